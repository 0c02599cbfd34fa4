"""A stand-in for an OpenAI-compatible model: `POST /v1/chat/completions` on loopback, scripted per test.

Each test registers a script under a fresh model name (`model = standin.script([...])`) and gives that
name to its assistant; requests are matched by their `model` field, so tests sharing one Spindle server
never see each other's replies. Every request body is recorded per model (`standin.requests(model)`).

A script is a list of steps, one consumed per request; when it runs out its last step repeats:

    text("Hello")                          a normal reply
    tool_call("get_weather", '{"city": "Paris"}', call_id="call_1")
    tool_calls(("call_1", "f", "{}"), ("call_1", "f", "{}"), (None, "f", "{}"))   parallel calls; ids may repeat
                                                                                  or be missing (None)
    length("The answer is")                finish_reason "length"
    rate_limited()                         429 with Retry-After: 0 (the script moves on to its next step)
    server_error()                         500
    slow(2, text("late"))                  sleep, then answer with the given step
    malformed("invalid_json")              200 whose body is not JSON ("no_choices": JSON without choices)
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.scripted_server import ScriptedServer


@dataclass(frozen=True)
class Step:
    kind: str  # reply | status | malformed | slow
    message: dict[str, Any] = field(default_factory=dict)
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0
    then: Step | None = None
    pieces: tuple[str, ...] = ()  # drip: the reply's text deltas, `seconds` apart

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def text(content: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> Step:
    return Step("reply", {"role": "assistant", "content": content}, "stop", prompt_tokens, completion_tokens)


def tool_calls(*calls: tuple[str | None, str, str], prompt_tokens: int = 13, completion_tokens: int = 5) -> Step:
    """Parallel tool calls, each `(id, name, arguments)`; an id of None leaves the `id` key out."""
    rendered = []
    for call_id, name, arguments in calls:
        call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
        if call_id is not None:
            call["id"] = call_id
        rendered.append(call)
    message = {"role": "assistant", "content": None, "tool_calls": rendered}
    return Step("reply", message, "tool_calls", prompt_tokens, completion_tokens)


def tool_call(
    name: str,
    arguments: str,
    call_id: str | None = "call_standin_1",
    prompt_tokens: int = 13,
    completion_tokens: int = 5,
) -> Step:
    return tool_calls((call_id, name, arguments), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def length(content: str, prompt_tokens: int = 11, completion_tokens: int = 16) -> Step:
    return Step("reply", {"role": "assistant", "content": content}, "length", prompt_tokens, completion_tokens)


def _error_body(message: str, error_type: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}).encode()


def rate_limited() -> Step:
    # Retry-After: 0 says "retry now"; the openai SDK treats 0 as unspecified and would back off 0.5 s or
    # more, so retry-after-ms (which it reads first) keeps its retry immediate.
    return Step(
        "status",
        status=429,
        headers=(("Retry-After", "0"), ("retry-after-ms", "1")),
        body=_error_body("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    )


def server_error() -> Step:
    return Step(
        "status",
        status=500,
        headers=(("retry-after-ms", "1"),),
        body=_error_body("The server had an error while processing your request.", "server_error", None),
    )


def malformed(kind: str = "invalid_json") -> Step:
    if kind == "invalid_json":
        return Step("malformed", body=b'{"id": "chatcmpl-broken", "choices": [')
    if kind == "no_choices":
        return Step(
            "malformed",
            body=json.dumps(
                {"id": "chatcmpl-broken", "object": "chat.completion", "created": 1, "model": "x"}
            ).encode(),
        )
    raise ValueError(f"unknown malformed kind {kind!r}")


def slow(seconds: float, then: Step) -> Step:
    return Step("slow", seconds=seconds, then=then)


def drip(pieces: list[str], gap_seconds: float, prompt_tokens: int = 11) -> Step:
    """A streamed reply of these text deltas, `gap_seconds` apart, as a model writing slowly does."""
    message = {"role": "assistant", "content": "".join(pieces)}
    return Step("drip", message, "stop", prompt_tokens, len(pieces), seconds=gap_seconds, pieces=tuple(pieces))


@dataclass(frozen=True)
class Hangup:
    """A client that closed a streamed reply before its end: how many chunks it had been sent, and when
    the stand-in noticed (time.monotonic())."""

    chunks_sent: int
    at: float


class StandInModel(ScriptedServer[Step]):
    """The stand-in server; `with StandInModel() as standin:` starts it on 127.0.0.1 and a free port."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __init__(self) -> None:
        super().__init__(_handler_for, "standin-model")
        self.hangups: dict[str, Hangup] = {}
        self.chunks_sent: dict[str, int] = {}
        self.embedded: list[tuple[str, int]] = []  # (model, how many texts) per embeddings request

    def wait_for_chunks(self, model: str, count: int, timeout: float = 30.0) -> None:
        """Block until a streamed reply for `model` has sent at least `count` chunks."""
        deadline = time.monotonic() + timeout
        while self.chunks_sent.get(model, 0) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{model} sent {self.chunks_sent.get(model, 0)} of {count} chunks")
            time.sleep(0.01)

    def wait_for_hangup(self, model: str, timeout: float = 30.0) -> Hangup | None:
        """The hang-up of `model`'s streamed reply, once the client closed it; None if it never did."""
        deadline = time.monotonic() + timeout
        while model not in self.hangups and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.hangups.get(model)


# `POST /v1/embeddings`: a toy embedding model that knows a few synonyms, which keyword search does not,
# so a test can tell semantic search joining in. Each word (a synonym replaced by its head word) adds
# +1 or -1 to one of 64 dimensions picked by its hash; one more dimension is always 1.
EMBEDDING_DIMENSIONS = 64
SYNONYMS = {"automobile": "car", "vehicle": "car", "motorcar": "car", "purchase": "buy", "acquire": "buy"}


def toy_embedding(text: str) -> list[float]:
    vector = [0.0] * EMBEDDING_DIMENSIONS
    vector[0] = 1.0
    for word in re.findall(r"\w+", text.lower()):
        digest = int(hashlib.sha256(SYNONYMS.get(word, word).encode()).hexdigest(), 16)
        vector[1 + digest % (EMBEDDING_DIMENSIONS - 1)] += 1.0 if digest >> 200 & 1 else -1.0
    return vector


def _completion(model: str, step: Step) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": step.message, "logprobs": None, "finish_reason": step.finish_reason}],
        "usage": step.usage,
    }


def standin_streams(body: dict[str, Any]) -> bool:
    return bool(body.get("stream"))


def split_text(content: str, pieces: int = 3) -> list[str]:
    """`content` cut into up to `pieces` deltas that join back to it exactly."""
    if not content:
        return []
    size = max(1, -(-len(content) // pieces))
    return [content[start : start + size] for start in range(0, len(content), size)]


def _chunks(model: str, step: Step, include_usage: bool) -> list[dict[str, Any]]:
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    message = step.message
    chunks = [chunk({"role": "assistant", "content": ""})]
    for piece in split_text(message.get("content") or ""):
        chunks.append(chunk({"content": piece}))
    for index, call in enumerate(message.get("tool_calls") or []):
        opening = {"index": index, "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}
        if "id" in call:
            opening["id"] = call["id"]
        chunks.append(chunk({"tool_calls": [opening]}))
        for piece in split_text(call["function"]["arguments"]):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, step.finish_reason))
    if include_usage:
        chunks.append({**chunk({}), "choices": [], "usage": step.usage})
    return chunks


def raw_stream(*chunks: dict[str, Any]) -> Step:
    """Exactly these chunk objects, streamed as they are (for malformed provider output)."""
    return Step("raw_stream", body=json.dumps(list(chunks)).encode())


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """One chat.completion.chunk with one choice, for raw_stream()."""
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fault",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(prompt_tokens: Any, completion_tokens: Any) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": 3}
    return {**chunk({}), "choices": [], "usage": usage}


def _call_delta(**fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": "{}"}, **fields}]}


def _call(function: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": function}]}


# Provider output that is well-formed JSON but not what the chat completions contract promises.
MALFORMED_CHUNKS: dict[str, list[dict[str, Any]]] = {
    "content that is not a string": [chunk({"role": "assistant", "content": 42}), chunk({}, "stop")],
    "a usage count that is a string": [chunk({"content": "hi"}), chunk({}, "stop"), usage_chunk("three", 2)],
    "a tool-call delta without index": [chunk(_call_delta(id="call_1")), chunk({}, "tool_calls")],
    "a tool-call id that is not a string": [chunk(_call_delta(index=0, id=7)), chunk({}, "tool_calls")],
    "a tool-call name that is not a string": [chunk(_call({"name": ["x"]})), chunk({}, "tool_calls")],
    "tool-call arguments that are not a string": [chunk(_call({"name": "f", "arguments": 5})), chunk({}, "tool_calls")],
}


def broken_stream(content: str) -> Step:
    """A streamed reply whose connection drops after its first delta."""
    return Step("broken_stream", {"role": "assistant", "content": content})


def _handler_for(standin: StandInModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length_header = self.headers.get("Content-Length")
            raw = self.rfile.read(int(length_header)) if length_header else b""
            if self.path.split("?", 1)[0] == "/v1/embeddings":
                self._embeddings(raw)
                return
            if self.path.split("?", 1)[0] != "/v1/chat/completions":
                self._send(404, _error_body(f"Unknown path {self.path}", "invalid_request_error", "unknown_url"))
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._send(400, _error_body("The body is not JSON.", "invalid_request_error", None))
                return
            if not isinstance(body, dict):
                self._send(400, _error_body("The body is not an object.", "invalid_request_error", None))
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            step = standin._take(body.get("model"), body, headers)
            if step is None:
                message = f"The model `{body.get('model')}` does not exist (no script registered)."
                self._send(404, _error_body(message, "invalid_request_error", "model_not_found"))
                return
            self._body = body
            self._answer(body["model"], step)

        def _embeddings(self, raw: bytes) -> None:
            body = json.loads(raw)
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            standin.embedded.append((body["model"], len(texts)))
            data = [{"object": "embedding", "index": n, "embedding": toy_embedding(t)} for n, t in enumerate(texts)]
            usage = {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": 0}
            answer = {"object": "list", "data": data, "model": body["model"], "usage": usage}
            self._send(200, json.dumps(answer).encode(), (("Content-Type", "application/json"),))

        def _answer(self, model: str, step: Step) -> None:
            if step.kind == "slow":
                time.sleep(step.seconds)
                assert step.then is not None
                self._answer(model, step.then)
            elif step.kind == "reply" and standin_streams(self._body):
                self._stream(model, step)
            elif step.kind == "drip":
                chunks = [chunk({"role": "assistant", "content": piece}) for piece in step.pieces]
                chunks += [chunk({}, "stop"), {**chunk({}), "choices": [], "usage": step.usage}]
                self._stream(model, step, chunks=chunks, gap=step.seconds)
            elif step.kind == "broken_stream":
                self._stream(model, step, break_after=2)
            elif step.kind == "raw_stream":
                self._stream(model, step, chunks=json.loads(step.body))
            elif step.kind == "reply":
                self._send(200, json.dumps(_completion(model, step)).encode())
            else:  # status, malformed
                self._send(step.status, step.body, step.headers)

        def _stream(
            self,
            model: str,
            step: Step,
            break_after: int | None = None,
            chunks: list[dict[str, Any]] | None = None,
            gap: float = 0.0,
        ) -> None:
            """The reply as chat.completion.chunk events, as OpenAI streams it (`stream: true`)."""
            if chunks is None:
                include_usage = bool((self._body.get("stream_options") or {}).get("include_usage"))
                chunks = _chunks(model, step, include_usage=include_usage)
            sent = 0
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for number, chunk in enumerate(chunks):
                    if break_after is not None and number == break_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # the provider dies mid-stream
                        self.close_connection = True
                        return
                    if gap and number:
                        time.sleep(gap)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    sent += 1
                    standin.chunks_sent[model] = sent
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError, OSError):
                standin.hangups.setdefault(model, Hangup(sent, time.monotonic()))
                self.close_connection = True

        def _send(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (its timeout passed while a slow step slept): nothing to answer.
                self.close_connection = True

    return Handler
