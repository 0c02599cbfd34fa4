"""The run engine on moto, in-process, with the offline model: leases, crashes and duplicates."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.domain import assistants, lifecycle, runs, threads
from chalicelib.runs import engine
from chalicelib.runs.engine import advance_run
from chalicelib.runs.providers.base import Finish, TextDelta, Usage
from chalicelib.runs.providers.offline import OfflineProvider
from chalicelib.storage import runs as store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import ListQuery, RunChange
from tests.storage.conftest import time_passes

PROJECT = "proj_engine"
DRAFT = lifecycle.new_draft(1)


def queued_run(aws):
    assistant = assistants.create_assistant(PROJECT, {"model": "offline"})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "hello"}]})
    return runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})


def assistant_messages(stored) -> list[dict]:
    page = threads.list_messages(PROJECT, stored.ref.thread_id, ListQuery(limit=100), stored.ref.run_id)
    return page["data"]


def test_a_crashed_workers_lease_expires_and_the_run_is_resumed(aws):
    stored = queued_run(aws)
    # A worker claimed the run, then died before writing anything.
    crashed = lifecycle.claimed(stored, "dead-worker", time.time(), lease_seconds=0.5)
    assert store.apply(crashed).applied

    waiting = advance_run(stored.ref)
    assert waiting.done is False and 0 < waiting.wait_seconds <= 0.5
    assert store.get_run(stored.ref).status == "in_progress"

    time.sleep(waiting.wait_seconds + 0.05)
    assert advance_run(stored.ref).done is True
    assert store.get_run(stored.ref).status == "completed"
    assert len(assistant_messages(stored)) == 1


def test_a_duplicated_step_never_applies_twice(aws, monkeypatch):
    """Two workers on one run, interleaved deterministically: the second finds the first's lease and
    waits; replaying the first's completion changes nothing; exactly one reply is written."""
    stored = queued_run(aws)
    replayed: list[RunChange] = []
    real_apply = store.apply

    def recording_apply(change: RunChange):
        applied = real_apply(change)
        if applied.applied and change.to_status == "completed":
            replayed.append(change)
        return applied

    monkeypatch.setattr(store, "apply", recording_apply)
    second_outcome: list = []

    def second_worker_during_the_model_call(request):
        second_outcome.append(advance_run(stored.ref))  # a duplicate arrives while the first is busy
        return [TextDelta("once"), Finish("stop")]

    monkeypatch.setattr(engine, "provider_for", lambda model: OfflineProvider(second_worker_during_the_model_call))
    assert advance_run(stored.ref).done is True
    assert second_outcome[0].done is False and second_outcome[0].wait_seconds > 0
    assert real_apply(replayed[0]).applied is False  # the same step, replayed
    assert store.get_run(stored.ref).status == "completed"
    assert len(assistant_messages(stored)) == 1
    assert len(store.all_steps(stored.ref)) == 1
    logged = [item["event"] for item in store.events_after(stored.ref, 0)]
    assert logged.count("thread.run.in_progress") == 1 and logged.count("thread.run.completed") == 1
    assert advance_run(stored.ref).done is True  # advancing a finished run changes nothing
    assert len(assistant_messages(stored)) == 1


def test_workers_racing_on_threads_write_one_reply(aws, monkeypatch):
    """Eight real threads advance one run at once (the embedded store is atomic, as DynamoDB is):
    one claims it, the others find the lease; one reply, one step, one completion."""
    stored = queued_run(aws)
    barrier = threading.Barrier(8)

    def slow_model(request):
        time.sleep(0.05)  # every other worker arrives while this one holds the lease
        return [TextDelta("once"), Finish("stop")]

    monkeypatch.setattr(engine, "provider_for", lambda model: OfflineProvider(slow_model))

    def worker() -> bool:
        barrier.wait()
        return advance_run(stored.ref).done

    with ThreadPoolExecutor(8) as pool:
        outcomes = [future.result() for future in [pool.submit(worker) for _ in range(8)]]
    assert outcomes.count(True) >= 1
    assert store.get_run(stored.ref).status == "completed"
    assert [m["content"][0]["text"]["value"] for m in assistant_messages(stored)] == ["once"]
    assert len(store.all_steps(stored.ref)) == 1
    logged = [item["event"] for item in store.events_after(stored.ref, 0)]
    assert logged.count("thread.run.in_progress") == 1 and logged.count("thread.run.completed") == 1


def test_an_unexpected_error_while_advancing_fails_the_run_at_once(aws, monkeypatch):
    """One guard around the whole step: a bug not yet found fails the run with last_error and frees
    the thread, instead of leaving it in progress lease after lease."""
    stored = queued_run(aws)

    def buggy_model(request):
        raise KeyError("a bug not yet found")

    monkeypatch.setattr(engine, "provider_for", lambda model: OfflineProvider(buggy_model))
    assert advance_run(stored.ref).done is True
    failed = store.get_run(stored.ref)
    assert failed.status == "failed"
    assert failed.run["last_error"]["code"] == "server_error"
    assert "KeyError" in failed.run["last_error"]["message"]
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free again"})


def test_a_model_call_longer_than_the_lease_keeps_its_lease_and_writes_one_reply(aws, monkeypatch):
    """The lease is short and renewed while the model is called: other workers arriving all through a
    call five leases long wait instead of calling the model again."""
    monkeypatch.setattr(engine, "settings", dataclasses.replace(engine.settings, run_lease_seconds=0.6))
    stored = queued_run(aws)
    calls: list[float] = []

    def slow_model(request):
        calls.append(time.monotonic())
        time.sleep(3.0)
        return [TextDelta("slow but sure"), Finish("stop"), Usage(3, 4)]

    monkeypatch.setattr(engine, "provider_for", lambda model: OfflineProvider(slow_model))
    first = threading.Thread(target=advance_run, args=(stored.ref,), daemon=True)
    first.start()
    while not calls:  # the first worker holds the lease and is calling the model
        time.sleep(0.01)
    arrivals: list[float] = []
    deadline = time.monotonic() + 30
    while first.is_alive() and time.monotonic() < deadline:
        arrivals.append(time.monotonic())
        advance_run(stored.ref)  # what a driver's retry or a second poller would do
        time.sleep(0.2)
    first.join(30)

    assert max(arrivals) - calls[0] > 2 * 0.6  # others came when an unrenewed lease had run out
    assert len(calls) == 1
    finished = store.get_run(stored.ref)
    assert finished.status == "completed"
    assert [m["content"][0]["text"]["value"] for m in assistant_messages(stored)] == ["slow but sure"]


def test_an_unclaimed_run_expires(aws):
    stored = queued_run(aws)
    time_passes(stored.ref, expires_at=int(time.time()) - 1)
    assert advance_run(stored.ref).done is True
    expired = store.get_run(stored.ref)
    assert expired.status == "expired"
    logged = store.events_after(stored.ref, 0)
    assert [item["event"] for item in logged] == ["thread.run.created", "thread.run.queued", "thread.run.expired"]
    assert logged[-1]["data"]["status"] == "expired"
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free again"})


def test_a_claim_that_loses_the_race_for_the_event_log_is_a_lost_race_not_an_error(aws):
    stored = queued_run(aws)
    winner = lifecycle.claimed(stored, "winner", time.time(), lease_seconds=60)
    loser = lifecycle.claimed(stored, "loser", time.time(), lease_seconds=60)
    assert store.apply(winner).applied is True
    refused = store.apply(loser)
    assert refused.applied is False
    assert refused.current.lease_token == "winner"  # the refusal says what it found: no second read
    assert store.get_run(stored.ref).lease_token == "winner"


def test_a_reply_to_a_deleted_thread_ends_the_run_writes_nothing_into_it_and_leaves_the_change_as_built(aws):
    """The thread was deleted while the model answered: the run still ends (once), no message lands in
    the gone thread, and the change handed to storage is the change that was built."""
    stored = queued_run(aws)
    claim = lifecycle.claimed(stored, "worker", time.time(), lease_seconds=60)
    assert store.apply(claim).applied
    working = dataclasses.replace(lifecycle.after(stored, claim), event_seq=stored.event_seq + 1)
    reply = lifecycle.answered(working, DRAFT, ["too late"], truncated=False, step_usage=lifecycle.usage(1, 1), now=1)
    assert threads.delete_thread(PROJECT, stored.ref.thread_id)

    assert store.apply(reply).applied is True
    assert len(reply.messages) == 1  # not emptied by the retry without the thread
    assert store.get_run(stored.ref).status == "completed"
    assert list(store.list_steps(stored.ref, ListQuery(limit=10)).items)  # the step is the run's own
    assert thread_store.list_messages(PROJECT, stored.ref.thread_id, ListQuery(limit=10), stored.ref.run_id).items == []
    assert store.apply(reply).applied is False  # and it applies once


def test_a_cancel_while_the_model_writes_stops_the_call_and_keeps_the_text_so_far(aws):
    """The stop button: the worker notices the cancel at the model's next delta, closes the model's
    stream, and keeps what was written as an incomplete message (reason run_cancelled)."""
    stored = queued_run(aws)
    yielded: list[str] = []
    closed = threading.Event()

    def talkative(request):
        try:
            for number in range(200):  # 20 s of deltas unless stopped
                yielded.append(f"w{number} ")
                yield TextDelta(f"w{number} ")
                time.sleep(0.1)
            yield Finish("stop")
        finally:
            closed.set()

    engine_under_test = threading.Thread(target=advance_run, args=(stored.ref,), daemon=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "provider_for", lambda model: OfflineProvider(talkative))
        engine_under_test.start()
        while len(yielded) < 3:
            time.sleep(0.01)
        runs.cancel_run(PROJECT, stored.ref.thread_id, stored.ref.run_id)
        assert closed.wait(30)  # the model call was stopped (bounded generously: the machine may be busy)
        engine_under_test.join(30)
    assert len(yielded) < 200
    ended = store.get_run(stored.ref)
    assert ended.status == "cancelled"
    (message,) = assistant_messages(stored)
    assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_cancelled"}
    kept = message["content"][0]["text"]["value"]
    assert kept.startswith("w0 w1 w2 ") and "".join(yielded).startswith(kept)  # the deltas read before the stop
    (step,) = store.all_steps(stored.ref)
    assert step["type"] == "message_creation" and step["status"] == "cancelled" and step["cancelled_at"]
    logged = [item["event"] for item in store.events_after(stored.ref, 0)]
    assert logged[-3:] == ["thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled"]
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free again"})
