"""`stream=True`: the official server-sent event sequence, through the SDK's streaming helpers."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid

import pytest

from tests.event_collector import Clocked, Collector
from tests.standin_model import broken_stream, drip, length, slow, split_text, text, tool_call

CITY = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ARGUMENTS = '{"city": "Paris", "unit": "celsius"}'


@pytest.fixture
def client(model_server):
    return model_server.client(f"sk-stream-{uuid.uuid4().hex}")


def a_thread(client, content: str = "What is the weather in Paris?"):
    return client.beta.threads.create(messages=[{"role": "user", "content": content}])


TEXT_SEQUENCE = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]
TEXT_ENDING = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]


def test_a_streamed_reply_arrives_as_the_official_event_sequence(client, standin):
    reply = "It is sunny in Paris, 21 degrees."
    model = standin.script([text(reply)])
    assistant = client.beta.assistants.create(model=model, instructions="Be brief.")
    thread = a_thread(client)
    handler = Collector()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
        final_run = s.get_final_run()
        final_messages = s.get_final_messages()
    deltas = split_text(reply)
    assert handler.names == TEXT_SEQUENCE + ["thread.message.delta"] * len(deltas) + TEXT_ENDING
    assert handler.text_deltas == deltas
    assert handler.steps_done == ["message_creation"]
    stored = client.beta.threads.messages.list(thread.id).data[0]
    assert stored.content[0].text.value == "".join(handler.text_deltas) == reply
    assert final_run.status == "completed" and final_run.id == stored.run_id
    assert [m.id for m in final_messages] == [stored.id]
    assert final_messages[0].content[0].text.value == reply
    assert standin.requests(model)[0]["stream"] is True


def test_a_streamed_tool_call_then_its_outputs_stream_the_rest(client, standin):
    model = standin.script([tool_call("get_weather", ARGUMENTS, call_id="call_paris"), text("Sunny.")])
    assistant = client.beta.assistants.create(model=model, tools=[CITY])
    thread = a_thread(client)
    handler = Collector()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
        run = s.get_final_run()
    assert handler.names == [
        *TEXT_SEQUENCE[:5],
        *["thread.run.step.delta"] * (1 + len(split_text(ARGUMENTS))),
        "thread.run.requires_action",
    ]
    assert "".join(handler.argument_deltas) == ARGUMENTS
    assert json.loads("".join(handler.argument_deltas)) == {"city": "Paris", "unit": "celsius"}
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert (call.id, call.function.arguments) == ("call_paris", ARGUMENTS)

    after = Collector()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "21C"}],
        event_handler=after,
    ) as s:
        s.until_done()
        assert s.get_final_run().status == "completed"
    assert after.names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert after.names[-3:] == TEXT_ENDING
    assert after.steps_done == ["tool_calls", "message_creation"]
    assert "".join(after.text_deltas) == "Sunny."


def test_create_and_run_stream_starts_with_the_thread(client, standin):
    model = standin.script([text("Hello there.")])
    assistant = client.beta.assistants.create(model=model)
    handler = Collector()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hi"}]}, event_handler=handler
    ) as s:
        s.until_done()
        run = s.get_final_run()
    assert handler.names[0] == "thread.created"
    assert handler.names[1:8] == TEXT_SEQUENCE
    assert handler.names[-3:] == TEXT_ENDING
    assert client.beta.threads.retrieve(run.thread_id).id == run.thread_id


def test_raw_create_stream_iterates_typed_events(client, standin):
    model = standin.script([length("Cut sh")])
    assistant = client.beta.assistants.create(model=model)
    thread = a_thread(client)
    events = list(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True))
    names = [event.event for event in events]
    assert names[-3:] == ["thread.message.incomplete", "thread.run.step.completed", "thread.run.incomplete"]
    assert events[-1].data.incomplete_details.reason == "max_completion_tokens"
    deltas = [e.data.delta.content[0].text.value for e in events if e.event == "thread.message.delta"]
    assert "".join(deltas) == "Cut sh"


def raw_stream(server, token: str, path: str, body: dict) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request("POST", path, body=json.dumps({**body, "stream": True}), headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    payload = response.read().decode()
    connection.close()
    return payload


def test_a_provider_failure_mid_stream_yields_run_failed_and_then_done(model_server, standin):
    token = f"sk-stream-fail-{uuid.uuid4().hex}"
    client = model_server.client(token)
    model = standin.script([broken_stream("This reply never finishes because the model dies")])
    assistant = client.beta.assistants.create(model=model)
    thread = a_thread(client)
    payload = raw_stream(model_server, token, f"/v1/threads/{thread.id}/runs", {"assistant_id": assistant.id})
    names = [line.removeprefix("event: ") for line in payload.splitlines() if line.startswith("event: ")]
    # The deltas the model wrote before it died were streamed as they came; the reply ends incomplete.
    deltas = names.count("thread.message.delta")
    assert deltas >= 1
    assert names == [
        *TEXT_SEQUENCE,
        *["thread.message.delta"] * deltas,
        "thread.message.incomplete",
        "thread.run.step.failed",
        "thread.run.failed",
        "done",
    ]
    assert payload.endswith("event: done\ndata: [DONE]\n\n")
    failed = json.loads(payload.split("event: thread.run.failed\ndata: ")[1].split("\n")[0])
    assert failed["last_error"]["code"] == "server_error"
    streamed = "".join(
        json.loads(line.removeprefix("data: "))["delta"]["content"][0]["text"]["value"]
        for line in payload.splitlines()
        if line.startswith("data: ") and '"object": "thread.message.delta"' in line
    )
    # The partial reply is kept as the official API keeps a message cut off by a failed run.
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.role == "assistant" and reply.status == "incomplete"
    assert reply.incomplete_details.reason == "run_failed" and reply.content[0].text.value == streamed
    (step,) = client.beta.threads.runs.steps.list(failed["id"], thread_id=thread.id).data
    assert step.status == "failed" and step.last_error.code == "server_error"


def test_a_run_cancelled_while_streaming_ends_cancelled(client, standin):
    model = standin.script([slow(1.5, text("too late"))])
    assistant = client.beta.assistants.create(model=model)
    thread = a_thread(client)
    handler = Collector()
    streamed = threading.Thread(
        target=lambda: (
            client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler)
            .__enter__()
            .until_done()
        )
    )
    streamed.start()
    standin.wait_for_requests(model, 1)
    run_id = client.beta.threads.runs.list(thread.id).data[0].id
    assert client.beta.threads.runs.cancel(run_id, thread_id=thread.id).status == "cancelling"
    streamed.join(timeout=30)
    assert handler.names[-2:] == ["thread.run.cancelling", "thread.run.cancelled"]
    assert "thread.message.created" not in handler.names


def test_the_event_log_is_what_every_stream_is_rendered_from(client, standin, model_server):
    """A second stream of the same run (submit after a stop) never repeats the first one's events."""
    model = standin.script([tool_call("get_weather", "{}", call_id="call_a"), text("Done.")])
    assistant = client.beta.assistants.create(model=model, tools=[CITY])
    thread = a_thread(client)
    first = list(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True))
    second = list(
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=first[0].data.id,
            tool_outputs=[{"tool_call_id": "call_a", "output": "x"}],
            stream=True,
        )
    )
    assert [e.event for e in first].count("thread.run.created") == 1
    assert "thread.run.created" not in [e.event for e in second]
    assert second[-1].event == "thread.run.completed"
    time.sleep(0)  # the run is finished: nothing runs in the background


def stream_a_slow_reply(api, streams, standin) -> tuple:
    """Stream (through `streams`; the other calls through `api`) a reply the model writes as ten deltas
    0.3 s apart, and check it came live: the first delta while the model still wrote, on_text_delta
    before the run completed, the official sequence, and the stored message the deltas joined, once."""
    pieces = [f"word{number} " for number in range(10)]
    model = standin.script([drip(pieces, gap_seconds=0.3)])
    assistant = api.beta.assistants.create(model=model)
    thread = a_thread(api)
    handler = Clocked(standin, model)

    with streams.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()

    assert handler.model_chunks_at_delta[0] < len(pieces)  # the model had not finished writing
    assert handler.deltas_before_completed == len(handler.text_deltas) == len(pieces)
    assert handler.names == [*TEXT_SEQUENCE, *["thread.message.delta"] * len(pieces), *TEXT_ENDING]
    stored = api.beta.threads.messages.list(thread.id).data[0]
    assert stored.role == "assistant" and stored.content[0].text.value == "".join(handler.text_deltas)
    assert "".join(handler.text_deltas) == "".join(pieces)
    assert len(standin.requests(model)) == 1
    return handler, thread


def test_deltas_reach_the_client_while_the_model_is_still_writing(client, standin):
    handler, thread = stream_a_slow_reply(client, client, standin)
    assert client.beta.threads.runs.retrieve(handler.current_run.id, thread_id=thread.id).status == "completed"


def test_a_client_that_hangs_up_mid_stream_leaves_a_run_that_completes_once(model_server, standin):
    """The streaming request's worker goes on without its client: the run completes with one reply and
    one model call, and a second client polling meanwhile sees a consistent status."""
    token = f"sk-stream-hangup-{uuid.uuid4().hex}"
    client = model_server.client(token)
    pieces = [f"part{number} " for number in range(12)]
    model = standin.script([drip(pieces, gap_seconds=0.15)])
    assistant = client.beta.assistants.create(model=model)
    thread = a_thread(client)
    connection = http.client.HTTPConnection("127.0.0.1", model_server.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"assistant_id": assistant.id, "stream": True})
    connection.request("POST", f"/v1/threads/{thread.id}/runs", body=body, headers=headers)
    response = connection.getresponse()
    seen = b""
    while b"thread.message.delta" not in seen:  # the reply has begun
        seen += response.read1(4096)
    connection.close()  # the client hangs up mid-reply

    run_id = client.beta.threads.runs.list(thread.id).data[0].id
    statuses = set()
    while (status := client.beta.threads.runs.retrieve(run_id, thread_id=thread.id).status) != "completed":
        statuses.add(status)
        assert status in ("queued", "in_progress"), status
        time.sleep(0.05)
    assert statuses <= {"queued", "in_progress"}
    (reply,) = client.beta.threads.messages.list(thread.id, run_id=run_id).data
    assert reply.content[0].text.value == "".join(pieces)
    assert len(standin.requests(model)) == 1  # one model call for the step, not one per worker
