"""Every run ends: malformed provider output and values the engine cannot use fail the run at once,
with `last_error`, and free the thread. (Each of these used to leave the run `in_progress`, the
model called again after every lease, until the run expired about 630 s later with no error.)"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.servers import children_of, start_local_server, wait_until_ready
from tests.standin_model import MALFORMED_CHUNKS, raw_stream, slow, text

# Well under one lease of the test server (60 s): a run that waits out a lease fails this bound.
ENDS_WITHIN_SECONDS = 30
RESUMED_WITHIN_SECONDS = 80
TERMINAL = {"completed", "incomplete", "failed", "cancelled", "expired"}


LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def client(model_server):
    return model_server.client(f"sk-faults-{uuid.uuid4().hex}")


def run_until_it_ends(client, thread_id: str, run_id: str):
    deadline = time.monotonic() + ENDS_WITHIN_SECONDS
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in TERMINAL | {"requires_action"}:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is still {run.status} after {ENDS_WITHIN_SECONDS} s")


@pytest.mark.parametrize("fault", sorted(MALFORMED_CHUNKS))
def test_malformed_provider_output_fails_the_run_at_once_and_frees_the_thread(client, standin, fault):
    model = standin.script([raw_stream(*MALFORMED_CHUNKS[fault]), text("recovered")])
    assistant = client.beta.assistants.create(model=model, tools=[LOOKUP])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)

    ended = run_until_it_ends(client, thread.id, run.id)

    assert ended.status == "failed", ended
    assert ended.last_error is not None and ended.last_error.code == "server_error"
    assert "malformed" in ended.last_error.message
    assert len(standin.requests(model)) == 1  # failed once, not retried lease after lease
    # Text the model wrote before its output went bad is kept as a reply cut off by a failed run (the
    # official API's incomplete message, reason run_failed); otherwise nothing is written.
    written_before_the_fault = {"a usage count that is a string": "hi"}.get(fault)
    messages = client.beta.threads.messages.list(thread.id).data
    if written_before_the_fault is None:
        assert [m.role for m in messages] == ["user"]
    else:
        assert [m.role for m in messages] == ["assistant", "user"]
        assert messages[0].status == "incomplete" and messages[0].incomplete_details.reason == "run_failed"
        assert messages[0].content[0].text.value == written_before_the_fault
    # The thread is free: the next run gets the model's next answer.
    again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert again.status == "completed"


def test_a_run_with_an_integral_float_truncation_completes(client, standin):
    """`last_messages: 2.0` is schema-valid (JSON Schema counts 2.0 as an integer): it is stored as 2,
    and the model sees the last two messages."""
    model = standin.script([text("fine")])
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": str(n)} for n in range(4)])
    run = client.beta.threads.runs.create(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2.0},  # type: ignore[typeddict-item]
    )

    ended = run_until_it_ends(client, thread.id, run.id)

    assert ended.status == "completed", ended.last_error
    assert ended.truncation_strategy.last_messages == 2
    sent = standin.requests(model)[0]["messages"]
    assert [m["content"] for m in sent if m["role"] == "user"] == ["2", "3"]


def test_a_body_nested_too_deep_is_refused_and_nothing_is_stored(client):
    """Function parameters nested 950 deep were accepted, and every run that used them answered 500.
    (Sent as raw bytes: the SDK's own JSON encoder gives up at that depth.)"""
    depth = 950
    parameters = '{"type": "object", "properties": {"inner": ' * depth + '{"type": "object"}' + "}}" * depth
    body = '{"model": "offline", "tools": [{"type": "function", "function": {"name": "deep", "parameters": '
    body += parameters + "}}]}"
    request = urllib.request.Request(
        f"{client.base_url}assistants",
        data=body.encode(),
        headers={"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["error"]["code"] == "json_too_deep"
    assert client.beta.assistants.list().data == []


def test_a_worker_that_dies_during_a_model_call_is_replaced_within_one_lease(standin):
    """The dev server's API process (its run worker) is killed while the model is answering. With the
    default settings the run is resumed once the short lease runs out, and completes with exactly
    one reply. (The lease used to cover the longest possible model call: 210 s by default.)"""
    model = standin.script([slow(45, text("never delivered")), text("resumed")])
    with start_local_server(auth="open", SPINDLE_LLM_BASE_URL=standin.base_url, SPINDLE_LLM_API_KEY="test") as server:
        client = server.client(f"sk-resume-{uuid.uuid4().hex}", timeout=30)
        assistant = client.beta.assistants.create(model=model)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        standin.wait_for_requests(model, 1)
        (api,) = children_of(server.process.pid)
        os.kill(api, signal.SIGKILL)
        killed_at = time.monotonic()

        wait_until_ready(server.base_url, server.process)
        while client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status not in TERMINAL:
            # The default lease is 20 s; a minute leaves room for the restart on a busy machine.
            assert time.monotonic() - killed_at < RESUMED_WITHIN_SECONDS, "the run was not resumed in time"
            time.sleep(0.2)

        finished = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert finished.status == "completed"
        replies = client.beta.threads.messages.list(thread.id, run_id=run.id).data
        assert [m.content[0].text.value for m in replies] == ["resumed"]
        assert len(standin.requests(model)) == 2
