"""The Bedrock provider against the ConverseStream stand-in (tests/standin_bedrock.py), through the real
boto3 client: what it sends, how it reads every kind of stream, and that anything else is a ProviderError."""

from __future__ import annotations

import base64
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from chalicelib.runs.providers import bedrock, images
from chalicelib.runs.providers.base import (
    CalledFunction,
    ChatMessage,
    Finish,
    ForcedFunction,
    FunctionTool,
    ImagePart,
    ModelRequest,
    ProviderError,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    collect,
)
from chalicelib.runs.providers.bedrock import BedrockProvider, converse_request
from tests.standin_bedrock import (
    broken_off,
    drip,
    encode_message,
    ended_early,
    event,
    exception_event,
    http_error,
    image_bytes,
    max_tokens,
    raw,
    raw_payload,
    stream_exception,
    text,
    throttled,
    tool_use,
    tool_use_in_delta,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEATHER = FunctionTool(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
LOOKUP = FunctionTool("lookup")


@pytest.fixture(scope="module")
def provider(standin_bedrock) -> BedrockProvider:
    return BedrockProvider("us-east-1", standin_bedrock.endpoint_url, timeout=5)


def user(*texts: str) -> ChatMessage:
    return ChatMessage("user", tuple(TextPart(t) for t in texts))


def ask(model: str, *messages: ChatMessage, **fields) -> ModelRequest:
    return ModelRequest(model=model, system=fields.pop("system", ""), messages=messages or (user("Hi"),), **fields)


def failure(provider: BedrockProvider, request: ModelRequest) -> ProviderError:
    with pytest.raises(ProviderError) as raised:
        collect(provider.stream(request))
    return raised.value


# --- the wire format ------------------------------------------------------------------------------


def test_the_stand_ins_framing_is_what_botocores_own_parser_reads():
    message = encode_message(
        {":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event"},
        b'{"contentBlockIndex": 0, "delta": {"text": "hi"}}',
    )
    total, headers_length = struct.unpack(">II", message[:8])
    assert total == len(message)

    buffer = EventStreamBuffer()
    buffer.add_data(message[:20])
    assert list(buffer) == []  # a message is only read once all of it has arrived
    buffer.add_data(message[20:] + message)
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert first.payload == b'{"contentBlockIndex": 0, "delta": {"text": "hi"}}'
    assert second.payload == first.payload and len(first.headers) == 3 and headers_length > 0

    corrupted = bytearray(message)
    corrupted[-6] ^= 0xFF  # a payload byte: the message CRC no longer matches
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(corrupted))
    with pytest.raises(ChecksumMismatch):
        list(buffer)


# --- what is sent -------------------------------------------------------------------------------


def test_a_text_reply_and_the_request_that_asked_for_it(provider, standin_bedrock):
    model = standin_bedrock.script([text("Paris is the capital.", input_tokens=42, output_tokens=8)])
    request = ModelRequest(
        model=model,
        system="You are a geography tutor.",
        messages=(
            user("Hi"),
            ChatMessage("assistant", (TextPart("Hello!"),)),
            user("What is the capital", "  ", "of France?"),
            user("Answer briefly."),
        ),
        temperature=1.5,
        top_p=0.9,
        max_output_tokens=300,
    )

    events = list(provider.stream(request))

    assert events[:3] == [TextDelta("Paris i"), TextDelta("s the c"), TextDelta("apital.")]
    assert events[3:] == [Finish("stop"), Usage(42, 8)]
    reply = collect(events)
    assert (reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == (
        "Paris is the capital.",
        "stop",
        42,
        8,
    )
    [sent] = standin_bedrock.requests(model)
    assert sent == {
        "system": [{"text": "You are a geography tutor."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello!"}]},
            # consecutive user turns are one turn; blank text is left out
            {
                "role": "user",
                "content": [{"text": "What is the capital"}, {"text": "of France?"}, {"text": "Answer briefly."}],
            },
        ],
        # temperature is clamped to Bedrock's 0..1
        "inferenceConfig": {"maxTokens": 300, "temperature": 1.0, "topP": 0.9},
    }
    [headers] = standin_bedrock.request_headers(model)
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]  # signed for Bedrock in the region


def test_function_calls_and_their_results_alternate_roles_with_results_in_one_user_turn(provider, standin_bedrock):
    model = standin_bedrock.script([text("Found them.")])
    calls = (
        CalledFunction("tooluse_a", "lookup", '{"q": "a"}'),
        CalledFunction("call_b", "lookup", "[1, 2]"),
        CalledFunction("call_c", "lookup", ""),
        CalledFunction("call_d", "lookup", '{"q": "cut of'),
    )
    request = ask(
        model,
        user("Look up a, b, c and d."),
        ChatMessage("assistant", (TextPart("Looking."),)),
        ChatMessage("assistant", calls=calls),
        *(ChatMessage("tool", (TextPart(output),), tool_call_id=c.id) for c, output in zip(calls, "AB C", strict=True)),
        tools=(WEATHER, LOOKUP),
    )

    assert collect(provider.stream(request)).text == "Found them."

    [sent] = standin_bedrock.requests(model)
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Look up a, b, c and d."}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Looking."},
                {"toolUse": {"toolUseId": "tooluse_a", "name": "lookup", "input": {"q": "a"}}},
                # `input` must be an object: other JSON values and unparsable text are wrapped
                {"toolUse": {"toolUseId": "call_b", "name": "lookup", "input": {"value": [1, 2]}}},
                {"toolUse": {"toolUseId": "call_c", "name": "lookup", "input": {}}},
                {"toolUse": {"toolUseId": "call_d", "name": "lookup", "input": {"value": '{"q": "cut of'}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_a", "content": [{"text": "A"}]}},
                {"toolResult": {"toolUseId": "call_b", "content": [{"text": "B"}]}},
                # blank text is refused by Bedrock: a blank output goes as a placeholder
                {"toolResult": {"toolUseId": "call_c", "content": [{"text": bedrock.EMPTY_TOOL_OUTPUT}]}},
                {"toolResult": {"toolUseId": "call_d", "content": [{"text": "C"}]}},
            ],
        },
    ]
    assert sent["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "inputSchema": {"json": dict(WEATHER.parameters)},
                }
            },
            {"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        ],
        "toolChoice": {"auto": {}},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        (ForcedFunction("get_weather"), {"tool": {"name": "get_weather"}}),
        ("none", None),
    ],
)
def test_tool_choice(choice, expected):
    body = converse_request(ask("m", tools=(WEATHER,), tool_choice=choice))
    assert body.get("toolConfig", {}).get("toolChoice") == expected
    assert ("toolConfig" in body) == (expected is not None)
    assert "parallel_tool_calls" not in str(body)  # Converse has no such switch


def test_tool_choice_none_still_declares_the_tools_when_the_conversation_holds_calls():
    request = ask(
        "m",
        user("Weather?"),
        ChatMessage("assistant", calls=(CalledFunction("call_1", "get_weather", "{}"),)),
        ChatMessage("tool", (TextPart("sunny"),), tool_call_id="call_1"),
        tools=(WEATHER,),
        tool_choice="none",
    )
    assert converse_request(request)["toolConfig"]["toolChoice"] == {"auto": {}}


def test_no_tools_no_tool_config_and_no_empty_fields():
    body = converse_request(ask("m"))
    assert body == {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "Reply with one JSON object and nothing else"),
        (
            {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}},
            'conforms to this JSON Schema, and nothing else: no prose, no Markdown code fence.\n{"type": "object"}',
        ),
    ],
)
def test_response_format_becomes_an_instruction_after_the_system_prompt(response_format, expected):
    [system] = converse_request(ask("m", system="Be brief.", response_format=response_format))["system"]
    assert system["text"].startswith("Be brief.\n\n") and expected in system["text"]
    assert "system" not in converse_request(ask("m", response_format={"type": "text"}))


def test_a_conversation_opens_and_ends_with_the_user():
    opening_with_assistant = converse_request(ask("m", ChatMessage("assistant", (TextPart("Welcome!"),)), user("Hi")))
    assert opening_with_assistant["messages"] == [
        {"role": "user", "content": [{"text": bedrock.CONVERSATION_START}]},
        {"role": "assistant", "content": [{"text": "Welcome!"}]},
        {"role": "user", "content": [{"text": "Hi"}]},
    ]
    ending_with_assistant = converse_request(ask("m", user("Hi"), ChatMessage("assistant", (TextPart("Hello."),))))
    assert ending_with_assistant["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}]},
        {"role": "assistant", "content": [{"text": "Hello."}]},
        {"role": "user", "content": [{"text": bedrock.CONVERSATION_CONTINUES}]},
    ]
    instructions_only = ModelRequest(model="m", system="Say hello.", messages=())
    assert converse_request(instructions_only)["messages"] == [
        {"role": "user", "content": [{"text": bedrock.CONVERSATION_START}]}
    ]


# --- images -------------------------------------------------------------------------------------


class _Images(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):  # noqa: N802
        if self.path == "/cat.png":
            status, body, media_type = 200, PNG, "image/png"
        elif self.path == "/huge.jpg":
            status, body, media_type = 200, JPEG + b"\x00" * bedrock.MAX_IMAGE_BYTES, "image/jpeg"
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        elif self.path == "/page":
            status, body, media_type = 200, b"<html></html>", "text/html"
        elif self.path == "/trickle.png":  # a byte every 0.2 s for 30 s: each read gets something
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "150")
            self.end_headers()
            for _ in range(150):
                try:
                    self.wfile.write(b"\x00")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            return
        else:
            status, body, media_type = 404, b"missing", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_counts_as_public(monkeypatch):
    monkeypatch.setattr(images, "_is_public", lambda address: True)


def test_images_are_sent_as_bytes_with_their_format(provider, standin_bedrock, image_host, loopback_counts_as_public):
    model = standin_bedrock.script([text("Two cats.")])
    data_url = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    request = ask(
        model,
        ChatMessage(
            "user",
            (
                TextPart("What are these?"),
                ImagePart(data=PNG, media_type="image/png", detail="auto"),
                ImagePart(url=data_url),
                ImagePart(url=f"{image_host}/moved", detail="low"),
            ),
        ),
        ChatMessage("assistant", (ImagePart(data=PNG, media_type="image/png"),)),
    )

    assert collect(provider.stream(request)).text == "Two cats."

    [sent] = standin_bedrock.requests(model)
    first, second = sent["messages"][0]["content"], sent["messages"][1]["content"]
    assert first[0] == {"text": "What are these?"}
    assert [block["image"]["format"] for block in first[1:]] == ["png", "jpeg", "png"]
    assert [image_bytes(block) for block in first[1:]] == [PNG, JPEG, PNG]
    # Bedrock takes images only from the user
    assert second == [{"text": bedrock.ASSISTANT_IMAGE}]
    assert sent["messages"][2] == {"role": "user", "content": [{"text": bedrock.CONVERSATION_CONTINUES}]}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.png", "could not be fetched: HTTP 404"),
        ("/huge.jpg", "larger than Amazon Bedrock's limit"),
        ("/page", "takes png, jpeg, gif or webp images, not text/html"),
    ],
)
def test_an_image_url_that_gives_no_usable_image_fails_before_the_call(
    provider, standin_bedrock, image_host, loopback_counts_as_public, path, message
):
    model = standin_bedrock.script([text("unused")])
    error = failure(provider, ask(model, ChatMessage("user", (ImagePart(url=image_host + path),))))
    assert error.code == "server_error" and message in error.message
    assert standin_bedrock.requests(model) == []


def test_image_urls_on_private_addresses_are_refused(provider, standin_bedrock, image_host):
    model = standin_bedrock.script([text("unused")])
    error = failure(provider, ask(model, ChatMessage("user", (ImagePart(url=f"{image_host}/cat.png"),))))
    assert "127.0.0.1 is not a public address" in error.message
    assert standin_bedrock.requests(model) == []


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (ImagePart(url="data:image/png;base64,%%%"), "not valid base64"),
        (ImagePart(url="ftp://example.com/cat.png"), "cannot be given the image"),
        (ImagePart(data=b"BM\x00\x00", media_type="image/bmp"), "not image/bmp"),
        (
            ImagePart(data=PNG + b"\x00" * bedrock.MAX_IMAGE_BYTES, media_type="image/png"),
            "larger than Amazon Bedrock's limit",
        ),
    ],
)
def test_images_bedrock_cannot_take_are_refused_with_the_reason(part, message):
    with pytest.raises(ProviderError) as raised:
        converse_request(ask("m", ChatMessage("user", (part,))))
    assert message in raised.value.message


# --- what is read -------------------------------------------------------------------------------


def test_tool_calls_are_numbered_among_tool_blocks_and_keep_their_fragments(provider, standin_bedrock):
    model = standin_bedrock.script(
        [
            tool_use(
                ("tooluse_1", "lookup", '{"q": "first"}'),
                ("tooluse_2", "get_weather", '{"city": "Paris"}'),
                text_before="Let me look.",
                input_tokens=30,
                output_tokens=9,
            )
        ]
    )

    events = list(provider.stream(ask(model, tools=(WEATHER, LOOKUP))))

    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0] == ToolCallDelta(0, "tooluse_1", "lookup", "")
    assert {c.index for c in calls} == {0, 1}  # not contentBlockIndex 1 and 2
    reply = collect(events)
    assert reply.text == "Let me look." and reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.calls] == [
        ("tooluse_1", "lookup", '{"q": "first"}'),
        ("tooluse_2", "get_weather", '{"city": "Paris"}'),
    ]
    assert reply.calls[0].argument_deltas == ['{"q":', ' "fir', 'st"}']
    assert (reply.prompt_tokens, reply.completion_tokens) == (30, 9)


def test_a_call_that_streams_no_input_takes_no_arguments(provider, standin_bedrock):
    model = standin_bedrock.script([tool_use(("tooluse_1", "lookup", ""))])
    [call] = collect(provider.stream(ask(model, tools=(LOOKUP,)))).calls
    assert (call.id, call.name, call.arguments) == ("tooluse_1", "lookup", "{}")


def test_a_call_named_in_its_delta_is_read_when_the_delta_carries_the_name():
    reading = bedrock._Reading()
    stream = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Checking."}}},
        {
            "contentBlockDelta": {
                "contentBlockIndex": 1,
                "delta": {"toolUse": {"toolUseId": "t1", "name": "f", "input": "{"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "}"}}}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
    ]
    reply = collect(event for item in stream for event in reading.events(item))
    assert [(c.id, c.name, c.arguments) for c in reply.calls] == [("t1", "f", "{}")]


def test_through_boto3_a_call_named_only_in_its_delta_is_refused(provider, standin_bedrock):
    # botocore keeps only the members its service model declares for a tool-use delta (`input`), so
    # an id and a name sent there never reach the provider: the call has no name, and is refused.
    model = standin_bedrock.script([tool_use_in_delta(("tooluse_1", "lookup", '{"q": "a"}'))])
    error = failure(provider, ask(model, tools=(LOOKUP,)))
    assert error.code == "server_error"
    assert "tool input for content block 0, which no contentBlockStart named" in error.message


def test_reasoning_and_unknown_deltas_are_ignored(provider, standin_bedrock):
    model = standin_bedrock.script(
        [
            raw(
                event("messageStart", {"role": "assistant"}),
                event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
                event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"citation": {"title": "x"}}}),
                event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Yes."}}),
                event("somethingNew", {"x": 1}),
                event("messageStop", {"stopReason": "end_turn"}),
            )
        ]
    )
    reply = collect(provider.stream(ask(model)))
    assert (reply.text, reply.finish_reason, reply.prompt_tokens) == ("Yes.", "stop", 0)


def test_max_tokens_makes_a_length_finish(provider, standin_bedrock):
    model = standin_bedrock.script([max_tokens("The history of Rome")])
    reply = collect(provider.stream(ask(model, max_output_tokens=256)))
    assert (reply.text, reply.finish_reason) == ("The history of Rome", "length")
    assert standin_bedrock.requests(model)[0]["inferenceConfig"] == {"maxTokens": 256}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("a_reason_added_later", "stop"),  # as the OpenAI-compatible provider reads unknown finish reasons
    ],
)
def test_stop_reasons(provider, standin_bedrock, stop_reason, finish):
    model = standin_bedrock.script([text("x", stop_reason=stop_reason)])
    assert collect(provider.stream(ask(model))).finish_reason == finish


@pytest.mark.parametrize(
    ("stop_reason", "message"),
    [
        ("malformed_tool_use", "The model's reply was malformed (Bedrock stopReason malformed_tool_use)."),
        ("malformed_model_output", "The model's reply was malformed (Bedrock stopReason malformed_model_output)."),
    ],
)
def test_stop_reasons_that_are_not_a_reply(provider, standin_bedrock, stop_reason, message):
    model = standin_bedrock.script([text("x", stop_reason=stop_reason)])
    error = failure(provider, ask(model))
    assert (error.code, error.message) == ("server_error", message)


# --- what fails ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        ("modelStreamErrorException", "server_error"),
        ("internalServerException", "server_error"),
        ("validationException", "server_error"),
        ("serviceUnavailableException", "server_error"),
        ("throttlingException", "rate_limit_exceeded"),
    ],
)
def test_an_exception_in_the_stream_fails_with_its_message(provider, standin_bedrock, exception, code):
    model = standin_bedrock.script([stream_exception(exception, "Something went wrong upstream.")])
    error = failure(provider, ask(model))
    assert error.code == code and "Something went wrong upstream." in error.message
    assert len(standin_bedrock.requests(model)) == 1  # a stream that started is never retried


def test_throttling_before_the_stream_is_retried_then_reported(provider, standin_bedrock):
    recovering = standin_bedrock.script([throttled(), text("Made it.")])
    assert collect(provider.stream(ask(recovering))).text == "Made it."
    assert len(standin_bedrock.requests(recovering)) == 2

    persistent = standin_bedrock.script([throttled()])
    error = failure(provider, ask(persistent))
    assert error.code == "rate_limit_exceeded"
    assert error.message == (
        "Amazon Bedrock is throttling requests: Too many requests, please wait before trying again."
    )
    assert len(standin_bedrock.requests(persistent)) == 3  # botocore's standard mode: three attempts


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
        (400, "ValidationException", "The provided model identifier is invalid."),
        (404, "ResourceNotFoundException", "Model not found."),
        (424, "ModelErrorException", "The model returned an error."),
    ],
)
def test_a_refused_call_names_the_cause(provider, standin_bedrock, status, error_type, message):
    model = standin_bedrock.script([http_error(status, error_type, message)])
    error = failure(provider, ask(model))
    assert (error.code, error.message) == ("server_error", f"Amazon Bedrock failed ({error_type}): {message}")
    assert len(standin_bedrock.requests(model)) == 1


def test_a_stream_that_breaks_off_or_ends_without_message_stop_fails(provider, standin_bedrock):
    broken = failure(provider, ask(standin_bedrock.script([broken_off("Half an answer")])))
    assert broken.code == "server_error" and broken.message.startswith("Amazon Bedrock's stream broke:")
    ended = failure(provider, ask(standin_bedrock.script([ended_early("Half an answer")])))
    assert (ended.code, ended.message) == (
        "server_error",
        "Amazon Bedrock's stream ended before its messageStop event.",
    )


def test_an_unreachable_endpoint_fails_the_call():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    unreachable = BedrockProvider("us-east-1", f"http://127.0.0.1:{port}", timeout=2)
    error = failure(unreachable, ask("anthropic.claude"))
    assert error.code == "server_error" and error.message.startswith("Amazon Bedrock could not be called:")


def test_the_whole_reply_must_arrive_within_the_timeout(standin_bedrock):
    impatient = BedrockProvider("us-east-1", standin_bedrock.endpoint_url, timeout=1)
    model = standin_bedrock.script([drip(0.3, text("Every event arrives, each in time, but all of them late."))])
    error = failure(impatient, ask(model))
    assert error.code == "server_error" and "in time" in error.message


def test_a_stream_that_stalls_fails_when_a_read_times_out(standin_bedrock):
    impatient = BedrockProvider("us-east-1", standin_bedrock.endpoint_url, timeout=1)
    model = standin_bedrock.script([drip(3, text("Never in time."))])
    error = failure(impatient, ask(model))
    assert (error.code, error.message) == ("server_error", "Amazon Bedrock did not send the rest of its reply in time.")
    assert len(standin_bedrock.requests(model)) == 1


def _delta(delta) -> object:
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta})


def _usage(input_tokens, output_tokens) -> object:
    return event("metadata", {"usage": {"inputTokens": input_tokens, "outputTokens": output_tokens}, "metrics": {}})


START = event("messageStart", {"role": "assistant"})
STOP = event("messageStop", {"stopReason": "end_turn"})
TOOL_START = event("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}})

MALFORMED = {
    "text that is not a string": [START, _delta({"text": 42}), STOP],
    "a block index that is a string": [
        START,
        event("contentBlockDelta", {"contentBlockIndex": "0", "delta": {"text": "x"}}),
        STOP,
    ],
    "a block index that is a boolean": [
        START,
        event("contentBlockDelta", {"contentBlockIndex": True, "delta": {"text": "x"}}),
        STOP,
    ],
    "a negative block index": [
        START,
        event("contentBlockDelta", {"contentBlockIndex": -1, "delta": {"text": "x"}}),
        STOP,
    ],
    "a delta that is a list (botocore's parser fails on it)": [START, _delta(["x"]), STOP],
    "a payload that is not JSON": [
        START,
        raw_payload("contentBlockDelta", b'{"contentBlockIndex": 0, "delta": '),
        STOP,
    ],
    "a tool-use id that is not a string": [
        START,
        event("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": 7, "name": "f"}}}),
        STOP,
    ],
    "a tool name that is missing": [
        START,
        event("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t"}}}),
        STOP,
    ],
    "tool input that is not a string": [START, TOOL_START, _delta({"toolUse": {"input": {"q": 1}}}), STOP],
    "a block started twice": [START, TOOL_START, TOOL_START, STOP],
    "a stop reason that is a number": [START, event("messageStop", {"stopReason": 1})],
    "input tokens that are a string": [START, STOP, _usage("3", 2)],
    "output tokens that are a boolean": [START, STOP, _usage(3, True)],
    "usage that is missing": [START, STOP, event("metadata", {"metrics": {}})],
}


@pytest.mark.parametrize("events", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_events_are_provider_errors(provider, standin_bedrock, events):
    model = standin_bedrock.script([raw(*events)])
    error = failure(provider, ask(model))
    assert error.code == "server_error"
    assert error.message.startswith(("Amazon Bedrock sent a malformed event", "Amazon Bedrock started content block"))


def test_an_exception_event_given_as_a_dict_is_refused_too():
    reading = bedrock._Reading()
    with pytest.raises(ProviderError) as raised:
        list(reading.events({"throttlingException": {"message": "Slow down."}}))
    assert (raised.value.code, raised.value.message) == (
        "rate_limit_exceeded",
        "Amazon Bedrock is throttling requests: Slow down.",
    )


def test_an_exception_message_without_a_known_type(provider, standin_bedrock):
    model = standin_bedrock.script([raw(START, exception_event("brandNewException", "Odd."))])
    error = failure(provider, ask(model))
    assert error.code == "server_error"


def test_a_server_that_trickles_an_image_cannot_hold_the_run_past_its_timeout(image_host, loopback_counts_as_public):
    """A socket timeout restarts with every byte; the fetch has a deadline of its own (the server would
    take 30 s; the fetch is given 1 s)."""
    started = time.monotonic()
    request = ModelRequest("m", "", (ChatMessage("user", (ImagePart(url=f"{image_host}/trickle.png"),)),))
    with pytest.raises(ProviderError, match="took too long"):
        converse_request(request, timeout=1.0)
    assert time.monotonic() - started < 15  # ended by the deadline, not by the server


def test_an_empty_tool_output_is_sent_as_a_placeholder_bedrock_accepts():
    request = ModelRequest(
        "m",
        "",
        (
            ChatMessage("user", (TextPart("go"),)),
            ChatMessage("assistant", calls=(CalledFunction("call_1", "f", "{}"),)),
            ChatMessage("tool", (TextPart(""),), tool_call_id="call_1"),
        ),
    )
    results = converse_request(request)["messages"][2]["content"]
    assert results == [{"toolResult": {"toolUseId": "call_1", "content": [{"text": bedrock.EMPTY_TOOL_OUTPUT}]}}]
