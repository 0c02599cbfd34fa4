"""A stand-in for Amazon Bedrock Runtime's ConverseStream: `POST /model/{modelId}/converse-stream` on
loopback, answering in the binary AWS event-stream encoding, so that the real boto3 client parses it.

moto has no Bedrock Runtime, so this speaks the wire protocol itself: each event is one event-stream
message (a prelude of total length, headers length and the prelude's CRC32; string headers
`:event-type`, `:content-type`, `:message-type`; the JSON payload; the message's CRC32; all big-endian),
sent as one HTTP chunk. An in-stream exception is a message whose `:message-type` is `exception` and
whose `:exception-type` names it; an error before the stream is an HTTP 4xx/5xx with a JSON body and the
`x-amzn-ErrorType` header, as the service sends them.

Scripts work as in tests/standin_model.py: `model = bedrock.script([...])` registers a script under a
fresh model id (it starts `anthropic.`, the prefix tests route to Bedrock, and ends `-v1:0`, so the id
is percent-encoded in the path as real ones are); one step is consumed per request and the last repeats.
Every request body is recorded per model (`bedrock.requests(model)`).

    text("Hello")                                   a reply in three text deltas, stopReason end_turn
    tool_use(("tooluse_1", "f", '{"a": 1}'), ...)   tool calls, arguments in fragments; text_before= adds a
                                                    text block first, so block indexes and call ordinals differ
    tool_use_in_delta(("tooluse_1", "f", "{}"))     the id and name in the first delta, no contentBlockStart
    max_tokens("The history of")                    stopReason max_tokens
    stream_exception("modelStreamErrorException")   a text delta, then an in-stream exception
    throttled()                                     HTTP 429 ThrottlingException before any stream
    http_error(403, "AccessDeniedException", "...") any error before the stream
    broken_off("partial")                           a text delta, then the connection drops mid-body
    ended_early("partial")                          the body ends cleanly, but without messageStop
    raw(event("messageStop", {...}), ...)           exactly these events (malformed ones included; raw_payload()
                                                    sends bytes that need not be JSON)
    drip(0.2, text("slow"))                         the given step, sleeping between its events
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
import struct
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.scripted_server import ScriptedServer

# --- the event-stream encoding ------------------------------------------------------------------


def _header(name: str, value: str) -> bytes:
    """One header whose value is a string (type 7): name length u8, name, type u8, value length u16, value."""
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message; the CRCs are CRC32 as binascii computes it."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw_headers + payload
    return head + struct.pack(">I", binascii.crc32(head))


@dataclass(frozen=True)
class Event:
    """An event (`:message-type` event) or an in-stream exception (`:message-type` exception)."""

    type: str  # messageStart, contentBlockDelta, … or throttlingException, …
    payload: dict[str, Any]
    exception: bool = False
    raw_payload: bytes | None = None  # sent instead of the JSON of `payload`

    def encode(self) -> bytes:
        if self.exception:
            headers = {":exception-type": self.type, ":content-type": "application/json", ":message-type": "exception"}
        else:
            headers = {":event-type": self.type, ":content-type": "application/json", ":message-type": "event"}
        payload = self.raw_payload if self.raw_payload is not None else json.dumps(self.payload).encode()
        return encode_message(headers, payload)


def event(event_type: str, payload: dict[str, Any]) -> Event:
    return Event(event_type, payload)


def exception_event(exception_type: str, message: str) -> Event:
    return Event(exception_type, {"message": message}, exception=True)


def raw_payload(event_type: str, payload: bytes) -> Event:
    """An event whose payload is exactly these bytes (JSON or not)."""
    return Event(event_type, {}, raw_payload=payload)


# --- steps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    kind: str  # events | http_error | drip
    events: tuple[Event, ...] = ()
    break_after: int | None = None  # drop the connection after this many events
    status: int = 200
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0
    then: Step | None = None


def split_text(content: str, pieces: int = 3) -> list[str]:
    """`content` cut into up to `pieces` deltas that join back to it exactly."""
    if not content:
        return []
    size = max(1, -(-len(content) // pieces))
    return [content[start : start + size] for start in range(0, len(content), size)]


def _ending(stop_reason: str, input_tokens: int, output_tokens: int) -> list[Event]:
    usage = {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens}
    return [
        event("messageStop", {"stopReason": stop_reason}),
        event("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}),
    ]


def _text_block(index: int, content: str) -> list[Event]:
    deltas = [
        event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}}) for p in split_text(content)
    ]
    return [*deltas, event("contentBlockStop", {"contentBlockIndex": index})]


def text(content: str, input_tokens: int = 11, output_tokens: int = 7, stop_reason: str = "end_turn") -> Step:
    events = [event("messageStart", {"role": "assistant"}), *_text_block(0, content)]
    return Step("events", tuple(events + _ending(stop_reason, input_tokens, output_tokens)))


def max_tokens(content: str, input_tokens: int = 11, output_tokens: int = 16) -> Step:
    return text(content, input_tokens, output_tokens, stop_reason="max_tokens")


def tool_use(
    *calls: tuple[str, str, str],
    text_before: str | None = None,
    input_tokens: int = 13,
    output_tokens: int = 5,
    ids_in_delta: bool = False,
) -> Step:
    """Tool calls, each `(toolUseId, name, arguments)`, the arguments streamed in fragments."""
    events = [event("messageStart", {"role": "assistant"})]
    index = 0
    if text_before is not None:
        events += _text_block(0, text_before)
        index = 1
    for call_id, name, arguments in calls:
        fragments = split_text(arguments) or [""]
        if ids_in_delta:
            first = {"toolUseId": call_id, "name": name, "input": fragments[0]}
            events.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": first}}))
            fragments = fragments[1:]
        else:
            start = {"toolUse": {"toolUseId": call_id, "name": name}}
            events.append(event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for fragment in fragments:
            delta = {"toolUse": {"input": fragment}}
            events.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    return Step("events", tuple(events + _ending("tool_use", input_tokens, output_tokens)))


def tool_use_in_delta(*calls: tuple[str, str, str]) -> Step:
    """Tool calls whose id and name come in their first delta rather than in a contentBlockStart."""
    return tool_use(*calls, ids_in_delta=True)


def stream_exception(exception_type: str = "modelStreamErrorException", message: str = "The model failed.") -> Step:
    events = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me"}}),
        exception_event(exception_type, message),
    ]
    return Step("events", tuple(events))


def http_error(status: int, error_type: str, message: str) -> Step:
    return Step("http_error", status=status, error_type=error_type, message=message)


def throttled() -> Step:
    return http_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")


def broken_off(content: str) -> Step:
    """A reply whose connection drops after its first delta, with the HTTP body unfinished."""
    return Step("events", text(content).events, break_after=2)


def ended_early(content: str) -> Step:
    """A reply whose body ends properly after its text, but which never sent messageStop."""
    return Step("events", tuple(e for e in text(content).events if e.type not in ("messageStop", "metadata")))


def raw(*events: Event) -> Step:
    return Step("events", tuple(events))


def drip(seconds: float, then: Step) -> Step:
    """`then`, sleeping `seconds` before each of its events."""
    return Step("drip", seconds=seconds, then=then)


# --- the server -----------------------------------------------------------------------------------


class StandInBedrock(ScriptedServer[Step]):
    """The stand-in server; `with StandInBedrock() as bedrock:` starts it on 127.0.0.1 and a free port."""

    model_prefix = "anthropic.claude-standin"
    model_suffix = "-v1:0"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __init__(self) -> None:
        super().__init__(_handler_for, "standin-bedrock")


def image_bytes(block: dict[str, Any]) -> bytes:
    """The bytes of a recorded `{"image": {"source": {"bytes": <base64>}}}` content block."""
    return base64.b64decode(block["image"]["source"]["bytes"])


PATH_PREFIX, PATH_SUFFIX = "/model/", "/converse-stream"


def _handler_for(standin: StandInBedrock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length_header = self.headers.get("Content-Length")
            raw_body = self.rfile.read(int(length_header)) if length_header else b""
            path = self.path.split("?", 1)[0]
            if not (path.startswith(PATH_PREFIX) and path.endswith(PATH_SUFFIX)):
                self._error(404, "UnknownOperationException", f"Unknown path {self.path}")
                return
            model = urllib.parse.unquote(path[len(PATH_PREFIX) : -len(PATH_SUFFIX)])
            try:
                body = json.loads(raw_body)
            except ValueError:
                self._error(400, "SerializationException", "The body is not JSON.")
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            step = standin._take(model, body, headers)
            if step is None:
                self._error(404, "ResourceNotFoundException", f"Model {model} not found (no script registered).")
                return
            self._answer(step)

        def _answer(self, step: Step, pause: float = 0.0) -> None:
            if step.kind == "http_error":
                self._error(step.status, step.error_type, step.message)
            elif step.kind == "drip":
                assert step.then is not None
                self._answer(step.then, pause=step.seconds)
            else:
                self._stream(step, pause)

        def _stream(self, step: Step, pause: float) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.send_header("Connection", "close")
                self.end_headers()
                for number, item in enumerate(step.events):
                    if step.break_after is not None and number == step.break_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # the body's last chunk never comes
                        self.close_connection = True
                        return
                    if pause:
                        self.wfile.flush()
                        time.sleep(pause)
                    message = item.encode()
                    self.wfile.write(f"{len(message):x}\r\n".encode() + message + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
            except OSError:  # the client gave up (a deadline passed): nothing more to send
                self.close_connection = True

        def _error(self, status: int, error_type: str, message: str) -> None:
            body = json.dumps({"message": message}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header(
                    "x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
                )
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True

    return Handler
