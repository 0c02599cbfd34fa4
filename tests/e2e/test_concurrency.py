"""Concurrency against the real local server over HTTP: the embedded store must keep DynamoDB's
promises (every call atomic, a failed transaction undoes only itself), so that what users see under
load is what they would see on AWS. Each scenario was seen failing on moto 5.2.5 unpatched."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.servers import LocalServer, start_local_server

WORKERS = 16
ECHO = {
    "type": "function",
    "function": {"name": "echo", "parameters": {"type": "object", "properties": {}}},
}
CALL_ECHO: Any = {"type": "function", "function": {"name": "echo"}}


@pytest.fixture(scope="module")
def busy_server():
    """A server of its own, so that these bursts neither disturb nor are disturbed by other tests."""
    with start_local_server(auth="open") as running:
        yield running


def tenant(server: LocalServer) -> openai.OpenAI:
    return server.client(f"sk-race-{uuid.uuid4().hex}", timeout=60)


def all_at_once(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run action(0..count-1) on WORKERS threads released together; return results or exceptions."""
    barrier = threading.Barrier(min(count, WORKERS))

    def attempt(index: int) -> Any:
        if index < WORKERS:
            barrier.wait()
        try:
            return action(index)
        except Exception as error:  # noqa: BLE001 - the test inspects what each call got
            return error

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(attempt, range(count)))


def waiting_for_tool_outputs(client: openai.OpenAI) -> tuple[str, Any]:
    assistant = client.beta.assistants.create(model="offline", tools=[ECHO])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "call echo"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice=CALL_ECHO, poll_interval_ms=20
    )
    assert run.status == "requires_action"
    return thread.id, run


def test_no_acknowledged_write_is_lost_while_another_tenants_writes_are_refused(busy_server):
    """Client X's messages are refused (its thread is locked by a run) while client Y creates threads:
    every thread Y was told exists must exist afterwards (moto's rollback of a failed transaction
    used to put back a stale copy of the whole table)."""
    x, y = tenant(busy_server), tenant(busy_server)
    locked_thread, _ = waiting_for_tool_outputs(x)

    def act(index: int) -> Any:
        if index % 2:
            return x.beta.threads.messages.create(locked_thread, role="user", content=f"refused {index}")
        return y.beta.threads.create(messages=[{"role": "user", "content": f"kept {index}"}])

    results = all_at_once(300, act)
    refused = [r for r in results[1::2]]
    created = [r for r in results[0::2]]
    assert all(isinstance(r, openai.BadRequestError) and r.code == "thread_locked" for r in refused), refused[:3]
    assert all(not isinstance(r, Exception) for r in created), [r for r in created if isinstance(r, Exception)][:3]
    missing = [t.id for t in created if not _exists(y, t.id)]
    assert missing == []
    listed = y.get("/threads", cast_to=object, options={"params": {"limit": 100}})  # Spindle's list extension
    assert len({t["id"] for t in listed["data"]}) == 100  # the list sees them too


def _exists(client: openai.OpenAI, thread_id: str) -> bool:
    try:
        client.beta.threads.retrieve(thread_id)
        return True
    except openai.NotFoundError:
        return False


def test_sixteen_writers_into_one_thread_lose_nothing_and_agree_on_the_order(busy_server):
    client = tenant(busy_server)
    thread = client.beta.threads.create()
    with others_writing(busy_server):
        results = all_at_once(
            WORKERS * 25, lambda n: client.beta.threads.messages.create(thread.id, role="user", content=str(n))
        )

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    stored = list(client.beta.threads.messages.list(thread.id, order="asc", limit=100))
    assert sorted(m.id for m in stored) == sorted(r.id for r in results)
    # One order for everyone: ids ascend with creation, and the list in either direction agrees.
    assert [m.id for m in stored] == sorted(m.id for m in stored)
    newest_first = list(client.beta.threads.messages.list(thread.id, order="desc", limit=100))
    assert [m.id for m in newest_first] == [m.id for m in reversed(stored)]


def test_concurrent_run_creates_on_one_thread_accept_exactly_one(busy_server):
    client = tenant(busy_server)
    assistant = client.beta.assistants.create(model="offline", tools=[ECHO])
    with others_writing(busy_server):
        for _ in range(8):
            _one_run_of_many(client, assistant.id)


def _one_run_of_many(client: openai.OpenAI, assistant_id: str) -> None:
    """Eight `runs.create` at once on a new thread: one is accepted, the others refused."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    results = all_at_once(
        8,
        lambda _: client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant_id, tool_choice=CALL_ECHO
        ),
    )
    accepted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(accepted) == 1, results
    assert all(isinstance(r, openai.BadRequestError) for r in refused), refused
    assert [run.id for run in client.beta.threads.runs.list(thread.id)] == [accepted[0].id]


def test_cancel_racing_tool_outputs_ends_in_one_consistent_outcome(busy_server):
    client = tenant(busy_server)
    with others_writing(busy_server):
        for _ in range(6):
            _cancel_against_outputs(client)


def _cancel_against_outputs(client: openai.OpenAI) -> None:
    """A cancel and the tool outputs sent at once: the run ends cancelled with no reply, or completed
    with it, and the thread is free again."""
    thread_id, run = waiting_for_tool_outputs(client)
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id

    def act(index: int) -> Any:
        if index == 0:
            return client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
        return client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call_id, "output": "42"}]
        )

    cancel, submit = all_at_once(2, act)
    final = client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=20)
    messages = client.beta.threads.messages.list(thread_id).data
    if final.status == "cancelled":  # the cancel came first, or while the outputs were queued
        assert not isinstance(cancel, Exception)
        assert not isinstance(submit, Exception) or isinstance(submit, openai.BadRequestError)
        assert [m.role for m in messages] == ["user"]
    else:
        assert final.status == "completed", final
        assert not isinstance(submit, Exception) and isinstance(cancel, openai.BadRequestError)
        assert [m.role for m in messages] == ["assistant", "user"]
    client.beta.threads.messages.create(thread_id, role="user", content="next")


def test_a_thread_that_answered_200_to_delete_stays_deleted(busy_server):
    client = tenant(busy_server)
    for _ in range(10):
        thread = client.beta.threads.create()

        def act(index: int, thread: Any = thread) -> Any:
            if index == 0:
                return client.beta.threads.delete(thread.id)
            return client.beta.threads.messages.create(thread.id, role="user", content=str(index))

        results = all_at_once(WORKERS, act)
        assert results[0].deleted is True
        assert all(not isinstance(r, Exception) or isinstance(r, openai.NotFoundError) for r in results), results
        with pytest.raises(openai.NotFoundError):
            client.beta.threads.retrieve(thread.id)
        with pytest.raises(openai.NotFoundError):
            client.beta.threads.messages.list(thread.id)


def test_forty_streamed_runs_in_a_row_each_end_with_their_message_and_done(busy_server):
    client = tenant(busy_server)
    assistant = client.beta.assistants.create(model="offline")
    thread = client.beta.threads.create()
    with others_writing(busy_server):
        for n in range(40):
            client.beta.threads.messages.create(thread.id, role="user", content=f"number {n}")
            with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
                events = [event.event for event in stream]
                final = stream.get_final_run()
                reply = stream.get_final_messages()
            assert events[-1] == "thread.run.completed", events
            assert final.status == "completed"
            assert [m.content[0].text.value for m in reply] == [f"You said: number {n}"]
    assert len(client.beta.threads.messages.list(thread.id, limit=100).data) == 80


@contextlib.contextmanager
def others_writing(server: LocalServer, writers: int = 3) -> Iterator[None]:
    """Another tenant writing without pause for as long as the block runs: messages appended to one
    thread, and messages refused on another that a run holds (each refusal is a failed transaction,
    which unpatched moto rolled back by putting back stale copies of whole tables)."""
    writer = tenant(server)
    free_thread = writer.beta.threads.create()
    locked_thread, _ = waiting_for_tool_outputs(writer)
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            writer.beta.threads.messages.create(free_thread.id, role="user", content="noise")
            with pytest.raises(openai.BadRequestError) as refused:
                writer.beta.threads.messages.create(locked_thread, role="user", content="refused")
            assert refused.value.code == "thread_locked"

    with ThreadPoolExecutor(writers) as pool:
        noise = [pool.submit(keep_writing) for _ in range(writers)]
        try:
            yield
        finally:
            stop.set()
            for future in noise:
                future.result()  # a writer that got an error fails the test


def test_create_and_poll_always_finds_its_run_while_others_write(busy_server):
    """Polling one's own run never answers 404, and a completed run always has its reply."""
    client = tenant(busy_server)
    assistant = client.beta.assistants.create(model="offline")
    with others_writing(busy_server):
        for n in range(30):
            thread = client.beta.threads.create(messages=[{"role": "user", "content": f"q{n}"}])
            run = client.beta.threads.runs.create_and_poll(
                thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
            )
            assert run.status == "completed"
            reply = client.beta.threads.messages.list(thread.id, run_id=run.id).data
            assert [m.content[0].text.value for m in reply] == [f"You said: q{n}"]


# --- no lost updates: concurrent modifies of one object each change a different field ------------

ASSISTANT_CHANGES: list[dict[str, Any]] = [
    {"name": "renamed"},
    {"description": "described"},
    {"instructions": "be brief"},
    {"temperature": 0.5},
    {"top_p": 0.5},
    {"metadata": {"team": "search"}},
    {"tools": [ECHO]},
    {"response_format": {"type": "json_object"}},
]


def test_eight_concurrent_field_changes_to_an_assistant_all_land(busy_server):
    """Each modify changes one field; every acknowledged change must be in the stored assistant (a
    read-merge-write with no condition lost most of them)."""
    client = tenant(busy_server)
    for _ in range(5):
        assistant = client.beta.assistants.create(model="offline")
        assistant_id = assistant.id

        def change(n: int, assistant_id: str = assistant_id) -> Any:
            return client.beta.assistants.update(assistant_id, **ASSISTANT_CHANGES[n])

        results = all_at_once(len(ASSISTANT_CHANGES), change)
        assert [r for r in results if isinstance(r, Exception)] == []
        stored = client.beta.assistants.retrieve(assistant.id).model_dump(mode="json")
        for change in ASSISTANT_CHANGES:
            for field, value in change.items():
                assert stored[field] == (
                    [{"type": "function", "function": {**ECHO["function"], "description": None, "strict": None}}]
                    if field == "tools"
                    else value
                ), field


def test_concurrent_changes_to_a_thread_and_a_run_keep_every_field(busy_server):
    """Thread metadata and tool resources changed at once, and a run's metadata changed while it is
    cancelled: each field ends with one of the values acknowledged for it, and the cancel stays."""
    client = tenant(busy_server)
    file = client.files.create(file=("notes.txt", b"notes"), purpose="assistants")
    thread_id, run = waiting_for_tool_outputs(client)

    def act(n: int) -> Any:
        if n == 0:
            return client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
        if n % 3 == 0:
            return client.beta.threads.update(thread_id, metadata={"writer": str(n)})
        if n % 3 == 1:
            return client.beta.threads.update(thread_id, tool_resources={"code_interpreter": {"file_ids": [file.id]}})
        return client.beta.threads.runs.update(run.id, thread_id=thread_id, metadata={"writer": str(n)})

    results = all_at_once(8, act)
    assert [r for r in results if isinstance(r, Exception)] == []
    thread = client.beta.threads.retrieve(thread_id)
    assert thread.metadata in [{"writer": str(n)} for n in (3, 6)]
    assert thread.tool_resources.code_interpreter.file_ids == [file.id]
    final = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert final.status in ("cancelling", "cancelled")
    assert final.metadata in [{"writer": str(n)} for n in (2, 5)]


def test_a_walk_with_after_sees_everything_committed_before_it_began_once_and_in_order(busy_server):
    """README's promise for paging while others write: every message committed before the walk began
    is seen exactly once, in order (messages written during the walk may or may not be)."""
    client = tenant(busy_server)
    thread = client.beta.threads.create()
    before = [client.beta.threads.messages.create(thread.id, role="user", content=f"b{n}").id for n in range(30)]
    stop = threading.Event()

    def keep_writing() -> None:
        for _ in range(40):  # bounded, so the walk catches up and ends
            if stop.is_set():
                return
            client.beta.threads.messages.create(thread.id, role="user", content="during")

    with ThreadPoolExecutor(2) as pool:
        writers = [pool.submit(keep_writing) for _ in range(2)]
        try:
            seen = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc", limit=5)]  # auto-pages
        finally:
            stop.set()
            for writer in writers:
                writer.result()
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert [message_id for message_id in seen if message_id in set(before)] == before
