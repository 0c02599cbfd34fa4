"""The stream function (what API Gateway sends the three stream-capable routes to on AWS), run as the
process the Lambda Web Adapter runs (chalicelib/stream_function.sh) and driven by the official SDK.

As deployed, it shares the store with the API handler (here `make dev`'s server, whose poller stands in
for the Step Functions driver): the SDK's other calls go there, the runs it streams come from here.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.test_streaming import CITY, TEXT_ENDING, TEXT_SEQUENCE, stream_a_slow_reply
from tests.event_collector import Collector
from tests.servers import LocalServer, start_stream_function
from tests.standin_model import drip, slow, split_text, text, tool_call

KEEP_ALIVE_SECONDS = 0.3


@pytest.fixture(scope="module")
def stream_function(model_server: LocalServer) -> Iterator[LocalServer]:
    """The default stream cap (SPINDLE_STREAM_MAX_SECONDS, 870 s), and keep-alives every 0.3 s so that a
    silent model shows them quickly."""
    with start_stream_function(model_server, SPINDLE_STREAM_KEEPALIVE_SECONDS=str(KEEP_ALIVE_SECONDS)) as running:
        yield running


@pytest.fixture
def token() -> str:
    return f"sk-stream-function-{uuid.uuid4().hex}"


@pytest.fixture
def api(model_server: LocalServer, token: str):
    """The SDK on every route but the three that stream (Chalice's handler on AWS)."""
    return model_server.client(token)


@pytest.fixture
def streams(stream_function: LocalServer, token: str):
    """The SDK on the stream function: the same base_url on AWS, where API Gateway picks the function."""
    return stream_function.client(token)


def a_thread(api, content: str = "What is the weather in Paris?"):
    return api.beta.threads.create(messages=[{"role": "user", "content": content}])


def replies(api, thread_id: str) -> list:
    return [message for message in api.beta.threads.messages.list(thread_id).data if message.role == "assistant"]


def post(server: LocalServer, token: str, path: str, body: dict) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request("POST", path, body=json.dumps(body), headers=headers)
    return connection.getresponse()


def test_a_reply_streams_live_from_the_stream_function(api, streams, standin):
    stream_a_slow_reply(api, streams, standin)


def test_tool_calls_stream_then_their_outputs_stream_the_rest(api, streams, standin):
    arguments = '{"city": "Paris"}'
    model = standin.script([tool_call("get_weather", arguments, call_id="call_sf"), text("Sunny.")])
    assistant = api.beta.assistants.create(model=model, tools=[CITY])
    thread = a_thread(api)
    first = Collector()
    with streams.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=first) as s:
        s.until_done()
        run = s.get_final_run()
    assert run.status == "requires_action"
    assert "".join(first.argument_deltas) == arguments
    assert first.names[-1] == "thread.run.requires_action"

    after = Collector()
    with streams.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": "call_sf", "output": "21C"}],
        event_handler=after,
    ) as s:
        s.until_done()
    assert after.names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert after.names[-3:] == TEXT_ENDING
    assert api.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"


def test_create_and_run_streams_from_the_stream_function(api, streams, standin):
    model = standin.script([text("Hello there.")])
    assistant = api.beta.assistants.create(model=model)
    handler = Collector()
    with streams.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hi"}]}, event_handler=handler
    ) as s:
        s.until_done()
        run = s.get_final_run()
    assert handler.names[0] == "thread.created" and handler.names[1:8] == TEXT_SEQUENCE
    assert handler.text_deltas == split_text("Hello there.")
    assert api.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "completed"


def test_a_request_without_stream_is_answered_in_one_piece(api, stream_function, token, standin):
    model = standin.script([text("Polled.")])
    assistant = api.beta.assistants.create(model=model)
    thread = a_thread(api)
    response = post(stream_function, token, f"/v1/threads/{thread.id}/runs", {"assistant_id": assistant.id})
    body = response.read()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") is None
    assert int(response.getheader("Content-Length")) == len(body)
    run = json.loads(body)
    assert run["object"] == "thread.run" and run["status"] == "queued"
    # the background driver (the API server's poller here, Step Functions on AWS) runs it
    assert api.beta.threads.runs.poll(run["id"], thread_id=thread.id, poll_interval_ms=50).status == "completed"


def test_a_silent_model_gets_keep_alive_comments_that_the_sdk_skips(api, stream_function, streams, token, standin):
    model = standin.script([slow(1.5, text("At last."))])
    assistant = api.beta.assistants.create(model=model)
    thread = a_thread(api)
    response = post(
        stream_function, token, f"/v1/threads/{thread.id}/runs", {"assistant_id": assistant.id, "stream": True}
    )
    payload = response.read().decode()
    assert payload.count(": keep-alive\n\n") >= 2  # about 1.5 s / 0.3 s of them
    assert payload.index(": keep-alive") < payload.index("event: thread.message.delta")
    assert payload.endswith("event: done\ndata: [DONE]\n\n")

    again = a_thread(api)
    handler = Collector()
    with streams.beta.threads.runs.stream(thread_id=again.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    assert handler.names == [*TEXT_SEQUENCE, *["thread.message.delta"] * len(split_text("At last.")), *TEXT_ENDING]


def test_cancel_on_the_api_stops_the_model_a_stream_function_drives(api, streams, standin):
    """Two functions, as on AWS: the API handler takes the cancel, the stream function's worker sees it
    and stops the model call; its stream ends `thread.run.cancelled`, then done."""
    model = standin.script([drip([f"word{number} " for number in range(200)], gap_seconds=0.1)])
    assistant = api.beta.assistants.create(model=model)
    thread = a_thread(api)
    handler = Collector()
    cancel_asked: list[float] = []

    def cancel_once_writing() -> None:
        standin.wait_for_chunks(model, 5)
        run_id = api.beta.threads.runs.list(thread.id).data[0].id
        cancel_asked.append(time.monotonic())
        api.beta.threads.runs.cancel(run_id, thread_id=thread.id)

    canceller = threading.Thread(target=cancel_once_writing)
    canceller.start()
    with streams.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    canceller.join()
    hangup = standin.wait_for_hangup(model)
    assert hangup is not None and hangup.chunks_sent < 200
    print(f"model call stopped {hangup.at - cancel_asked[0]:.3f} s after the cancel was asked")
    assert handler.names[-1] == "thread.run.cancelled"
    (message,) = replies(api, thread.id)
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    assert message.content[0].text.value == "".join(handler.text_deltas)


def test_a_model_that_talks_for_a_minute_streams_to_its_end(api, streams, standin):
    """No 25-second cap: the stream lasts as long as the model (a minute here), up to the platform's."""
    pieces = [f"w{number} " for number in range(120)]
    model = standin.script([drip(pieces, gap_seconds=0.5)])
    assistant = api.beta.assistants.create(model=model)
    thread = a_thread(api)
    handler = Collector()
    started = time.monotonic()
    with streams.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
        final = s.get_final_run()
    assert time.monotonic() - started >= 60
    assert final.status == "completed"
    assert handler.text_deltas == pieces
    assert handler.names[-3:] == TEXT_ENDING


@pytest.mark.parametrize("accept", [None, "application/json", "application/binary"])
def test_a_download_through_the_stream_function_is_the_files_bytes_for_any_accept(
    api, stream_function, token, accept
):
    """On AWS the download is the stream function's too (scripts/package.py): its bytes reach the client
    as they are, whatever the Accept."""
    from tests.e2e.test_files import DOWNLOADS, download

    for filename, payload, media_type in DOWNLOADS:
        uploaded = api.files.create(file=(filename, payload), purpose="assistants")
        response = download(stream_function, token, uploaded.id, accept)
        assert (response.status, response.getheader("Content-Type")) == (200, media_type)
        assert response.read() == payload
