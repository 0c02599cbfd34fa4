"""Runs under stress, in-process on moto: long queues, unstorable replies, slow steps under a stream
deadline, truncated tool calls, and a driver that cannot be told."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

from chalicelib.config import settings
from chalicelib.domain import assistants, runs, threads
from chalicelib.runs import engine, streaming
from chalicelib.runs.engine import Outcome, advance_run
from chalicelib.runs.providers.base import Finish, TextDelta, ToolCallDelta
from chalicelib.runs.providers.offline import OfflineProvider
from chalicelib.storage import drivers
from chalicelib.storage import runs as store
from chalicelib.storage.records import RunRef

PROJECT = "proj_robust"


def a_run(body: dict | None = None):
    assistant = assistants.create_assistant(PROJECT, {"model": "m", **(body or {})})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "hi"}]})
    return runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})


def test_the_queue_yields_due_runs_first_however_many_wait(aws):
    for number in range(150):
        store.enqueue(RunRef(PROJECT, "thread_a", f"run_{number:03d}"), time.time() + 600)
    late = RunRef(PROJECT, "thread_z", "run_zzz")
    store.enqueue(late, time.time() - 1)
    assert [ref for ref, _ in store.due_runs(time.time())] == [late]


def test_a_reply_too_large_to_store_fails_the_run_once(aws, monkeypatch):
    huge = OfflineProvider(lambda request: [TextDelta("x" * 450_000), Finish("stop")])
    monkeypatch.setattr(engine, "provider_for", lambda model: huge)
    stored = a_run()
    assert advance_run(stored.ref).done is True
    failed = store.get_run(stored.ref)
    assert failed.status == "failed" and failed.run["last_error"]["code"] == "server_error"
    assert len(huge.requests) == 1  # not retried: the model is not asked again
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free"})


def test_truncated_tool_calls_end_the_run_incomplete(aws, monkeypatch):
    cut = OfflineProvider(lambda request: [ToolCallDelta(0, "call_1", "f", '{"a": '), Finish("length")])
    monkeypatch.setattr(engine, "provider_for", lambda model: cut)
    stored = a_run()
    assert advance_run(stored.ref).done is True
    run = store.get_run(stored.ref)
    assert run.status == "incomplete" and run.run["incomplete_details"] == {"reason": "max_completion_tokens"}


def test_the_stream_deadline_holds_during_a_slow_step(aws, monkeypatch):
    monkeypatch.setattr(streaming, "settings", dataclasses.replace(settings, stream_max_seconds=0.2))
    step_finished = threading.Event()

    def slow_step(ref, listener=None):
        time.sleep(1.0)
        step_finished.set()
        return Outcome(done=False)

    monkeypatch.setattr(streaming, "advance_run", slow_step)
    stored = a_run()
    streamed = list(streaming.stream_events(stored.ref, 0))
    assert streamed[-1] is streaming.DEADLINE  # the stream ended at its deadline, not with the run
    assert not step_finished.is_set()  # the answer did not wait for the step
    assert [item["event"] for item in streamed[:-1]] == ["thread.run.created", "thread.run.queued"]


def test_a_run_no_driver_can_start_fails_instead_of_waiting_forever(aws, monkeypatch):
    monkeypatch.setattr(runs, "settings", dataclasses.replace(settings, run_driver="stepfunctions"))
    monkeypatch.setattr(drivers, "settings", dataclasses.replace(settings, run_driver="stepfunctions"))

    class Broken:
        def start_execution(self, **kwargs):
            raise RuntimeError("Step Functions is unreachable")

    monkeypatch.setattr(drivers, "_stepfunctions", lambda: Broken())
    stored = a_run()
    assert stored.status == "failed"
    assert stored.run["last_error"]["code"] == "server_error"
    logged = [item["event"] for item in store.events_after(stored.ref, 0)]
    assert logged[-1] == "thread.run.failed"
    assert threads.create_message(PROJECT, stored.ref.thread_id, {"role": "user", "content": "free"})
    assert json.dumps(runs.render_run(stored))
