"""The run engine on moto, in-process, with the offline model: leases, crashes and duplicates."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from chalicelib.domain import assistants, runs, threads
from chalicelib.runs import engine
from chalicelib.runs.engine import advance_run
from chalicelib.runs.providers import ChatResult
from chalicelib.storage import runs as store
from chalicelib.storage.records import ListQuery
from chalicelib.storage.runs import RunChange

PROJECT = "proj_engine"


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
    crashed = RunChange(
        stored.ref,
        ("queued",),
        "in_progress",
        stored.run,
        claim_before=time.time(),
        new_lease=("dead-worker", time.time() + 0.5),
        event_seq=stored.event_seq,
    )
    assert store.apply(crashed)

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

    def recording_apply(change: RunChange) -> bool:
        applied = real_apply(change)
        if applied and change.to_status == "completed":
            replayed.append(change)
        return applied

    monkeypatch.setattr(store, "apply", recording_apply)
    second_outcome: list = []

    class SecondWorkerDuringTheModelCall:
        def complete(self, request):
            second_outcome.append(advance_run(stored.ref))  # a duplicate arrives while the first is busy
            return ChatResult(text_deltas=["once"])

    monkeypatch.setattr(engine, "provider", lambda: SecondWorkerDuringTheModelCall())
    assert advance_run(stored.ref).done is True
    assert second_outcome[0].done is False and second_outcome[0].wait_seconds > 0
    assert real_apply(replayed[0]) is False  # the same step, replayed
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

    class SlowModel:
        def complete(self, request):
            time.sleep(0.05)  # every other worker arrives while this one holds the lease
            return ChatResult(text_deltas=["once"])

    monkeypatch.setattr(engine, "provider", lambda: SlowModel())

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

    class BuggyModel:
        def complete(self, request):
            raise KeyError("a bug not yet found")

    monkeypatch.setattr(engine, "provider", lambda: BuggyModel())
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

    class SlowModel:
        def complete(self, request):
            calls.append(time.monotonic())
            time.sleep(3.0)
            return ChatResult(text_deltas=["slow but sure"], prompt_tokens=3, completion_tokens=4)

    monkeypatch.setattr(engine, "provider", lambda: SlowModel())
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
    record_run = dict(stored.run, expires_at=int(time.time()) - 1)
    assert store.apply(RunChange(stored.ref, ("queued",), "queued", record_run, event_seq=stored.event_seq))
    assert advance_run(stored.ref).done is True
    expired = store.get_run(stored.ref)
    assert expired.status == "expired"
    logged = store.events_after(stored.ref, 0)
    assert [item["event"] for item in logged] == ["thread.run.created", "thread.run.queued", "thread.run.expired"]
    assert logged[-1]["data"]["status"] == "expired"
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free again"})


def test_a_claim_that_loses_the_race_for_the_event_log_is_a_lost_race_not_an_error(aws):
    stored = queued_run(aws)
    winner = RunChange(
        stored.ref,
        ("queued",),
        "in_progress",
        stored.run,
        claim_before=time.time(),
        new_lease=("winner", time.time() + 60),
        event_seq=stored.event_seq,
        events=[{"event": "thread.run.in_progress", "data": {}}],
    )
    loser = RunChange(
        stored.ref,
        ("queued",),
        "in_progress",
        stored.run,
        claim_before=time.time(),
        new_lease=("loser", time.time() + 60),
        event_seq=stored.event_seq,
        events=[{"event": "thread.run.in_progress", "data": {}}],
    )
    assert store.apply(winner) is True
    assert store.apply(loser) is False
    assert store.get_run(stored.ref).lease_token == "winner"
