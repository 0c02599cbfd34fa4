"""Amazon Bedrock through the Converse API, streamed (boto3 `bedrock-runtime` `converse_stream`).

The request (`ModelRequest` → ConverseStream):
  model → `modelId`; the instructions → `system: [{"text"}]`, with an instruction to reply in JSON
    appended for `response_format` json_object/json_schema (Converse has no such switch).
  user and assistant turns → `messages` of content blocks: text → `{"text"}` (blank text is left out,
    Bedrock refuses it); an image → `{"image": {"format", "source": {"bytes"}}}`: uploaded bytes as they
    are, a `data:` URL decoded, an http(s) URL fetched here (public addresses only, at most Bedrock's
    3.75 MB). Bedrock takes images only from the user, so an assistant turn's image becomes a note.
  an assistant turn's function calls → `{"toolUse": {"toolUseId", "name", "input"}}`, `input` being the
    arguments as a JSON object; a tool turn → `{"toolResult": {"toolUseId", "content": [{"text"}]}}` in
    a user turn. Consecutive turns of one role are merged (Bedrock wants the roles to alternate and
    the results of parallel calls in one user turn); a conversation that does not open with the user
    gets a short user turn first (Bedrock's models require one), and one that ends with the assistant a
    short user turn last (else Bedrock continues that message rather than answering).
  tools → `toolConfig.tools[].toolSpec {name, description, inputSchema.json}`; tool_choice auto,
    required, a named function → `toolChoice` `{"auto"}`, `{"any"}`, `{"tool": {"name"}}`; none → no
    toolConfig (see `_tool_config` for the one exception).
  max_output_tokens, temperature, top_p → `inferenceConfig` maxTokens, temperature (clamped to
    Bedrock's 0..1), topP. `parallel_tool_calls: false` has no Converse equivalent and is not sent.

The stream (ConverseStream events → `ProviderEvent`s):
  contentBlockDelta `delta.text` → TextDelta; `delta.reasoningContent` and other deltas are ignored.
  contentBlockStart `start.toolUse {toolUseId, name}` → ToolCallDelta(ordinal, id, name), the ordinal
    counting tool-use blocks only (contentBlockIndex counts text blocks too); `delta.toolUse.input` →
    ToolCallDelta(ordinal, arguments=fragment). A call that streamed no input gets arguments `{}`.
  messageStop `stopReason` → Finish: end_turn/stop_sequence → stop, tool_use → tool_calls,
    max_tokens/model_context_window_exceeded → length, guardrail_intervened/content_filtered →
    content_filter; malformed_model_output/malformed_tool_use → ProviderError; any other → stop.
  metadata `usage {inputTokens (+ cache reads and writes), outputTokens}` → Usage.
  Throttling (before or in the stream) → ProviderError rate_limit_exceeded; every other refusal,
  in-stream exception, timeout or broken connection → ProviderError server_error naming the cause.
botocore does not check the values it parses from a stream, so each one is type-checked here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.runs.providers.base import (
    Boundary,
    ChatMessage,
    Events,
    Finish,
    FinishReason,
    ForcedFunction,
    ImagePart,
    ModelRequest,
    ProviderError,
    ProviderEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from chalicelib.runs.providers.images import image_bytes, sniffed_media_type

_wire = Boundary("Amazon Bedrock sent a malformed event", counts_from_zero=True)
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
MALFORMED_STOPS = ("malformed_model_output", "malformed_tool_use")
THROTTLING = ("throttlingexception", "toomanyrequestsexception")
STREAM_EXCEPTIONS = (  # in-stream exceptions, should an event ever carry one rather than raise it
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
)

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
MAX_IMAGE_BYTES = 3_932_160  # Bedrock's limit per image: 3.75 MB
CONVERSATION_START = "(The conversation begins.)"  # the user turn a conversation must open with
CONVERSATION_CONTINUES = "(Continue the conversation.)"  # the user turn after a thread's last assistant message
EMPTY_TOOL_OUTPUT = "(no output)"  # what an empty tool output is sent as
ASSISTANT_IMAGE = "[An image is not shown: Amazon Bedrock takes images only from the user.]"


class BedrockProvider:
    def __init__(
        self, region: str, endpoint_url: str | None, timeout: float, reply_seconds: float | None = None
    ) -> None:
        """`timeout` bounds each wait for Bedrock; `reply_seconds` (default: `timeout`) the whole reply."""
        import boto3  # only runs import boto3: the CRUD path never needs it
        import botocore.exceptions
        import urllib3.exceptions
        from botocore.config import Config

        self._timeout = timeout
        self._reply_seconds = reply_seconds or timeout
        self._botocore = botocore.exceptions
        self._read_timeout = urllib3.exceptions.ReadTimeoutError  # a read in the stream, after the call
        # botocore's standard mode retries the call itself (throttling, 5xx, timeouts) with backoff and
        # jitter, three attempts in all; a stream that has started is never retried.
        config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard"})
        self._client = boto3.session.Session().client(
            "bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config
        )

    def stream(self, request: ModelRequest) -> Events:
        errors = self._botocore
        try:
            response = self._client.converse_stream(**converse_request(request, self._timeout))
        except errors.ClientError as error:
            raise _refused(error) from error
        except (errors.ReadTimeoutError, errors.ConnectTimeoutError) as error:
            raise ProviderError("server_error", "Amazon Bedrock did not answer in time.") from error
        except errors.BotoCoreError as error:  # no connection, a parameter botocore refused, …
            raise ProviderError("server_error", f"Amazon Bedrock could not be called: {error}") from error
        events = response["stream"]
        reading = _Reading()
        deadline = time.monotonic() + self._reply_seconds
        try:
            for item in events:
                if time.monotonic() > deadline:  # read_timeout bounds each read, not the whole reply
                    raise ProviderError("server_error", "Amazon Bedrock did not finish its reply in time.")
                yield from reading.events(item)
        except ProviderError:
            raise
        except errors.ClientError as error:  # an in-stream exception (botocore's EventStreamError)
            raise _refused(error) from error
        except (self._read_timeout, TimeoutError) as error:
            raise ProviderError("server_error", "Amazon Bedrock did not send the rest of its reply in time.") from error
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:  # botocore could not parse it
            raise ProviderError("server_error", f"Amazon Bedrock sent a malformed event: {error}") from error
        except Exception as error:  # the connection broke mid-stream
            raise ProviderError("server_error", f"Amazon Bedrock's stream broke: {error}") from error
        finally:
            events.close()
        if not reading.finished:
            raise ProviderError("server_error", "Amazon Bedrock's stream ended before its messageStop event.")


def _refused(error: Any) -> ProviderError:
    """A botocore ClientError (an HTTP error or an in-stream exception) as the run's error."""
    details = error.response.get("Error", {}) if isinstance(getattr(error, "response", None), dict) else {}
    return _refusal(str(details.get("Code") or "UnknownError"), str(details.get("Message") or error))


def _refusal(code: str, message: str) -> ProviderError:
    if code.lower() in THROTTLING:
        return ProviderError("rate_limit_exceeded", f"Amazon Bedrock is throttling requests: {message}")
    return ProviderError("server_error", f"Amazon Bedrock failed ({code}): {message}")


class _Reading:
    """The state of one stream: which content blocks are tool calls, and whether it finished."""

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}  # contentBlockIndex → the call's ordinal
        self.with_arguments: set[int] = set()
        self.finished = False

    def events(self, item: Any) -> Iterator[ProviderEvent]:
        for kind, body in _wire.mapping(item, "event").items():
            if kind == "contentBlockStart":
                yield from self._start(_wire.mapping(body, kind))
            elif kind == "contentBlockDelta":
                yield from self._delta(_wire.mapping(body, kind))
            elif kind == "messageStop":
                yield from self._stop(_wire.mapping(body, kind))
            elif kind == "metadata":
                usage = _wire.mapping(_wire.mapping(body, kind).get("usage"), "metadata.usage")
                prompt = _wire.count(usage.get("inputTokens"), "usage.inputTokens") + sum(
                    _wire.count(usage.get(name, 0), f"usage.{name}")
                    for name in ("cacheReadInputTokens", "cacheWriteInputTokens")
                )
                yield Usage(prompt, _wire.count(usage.get("outputTokens"), "usage.outputTokens"))
            elif kind in STREAM_EXCEPTIONS:
                raise _refusal(kind, str(_wire.mapping(body, kind).get("message") or "no message"))
            # messageStart, contentBlockStop and events this version does not know carry nothing to map

    def _start(self, body: Mapping[str, Any]) -> Iterator[ProviderEvent]:
        index = _wire.count(body.get("contentBlockIndex"), "contentBlockStart.contentBlockIndex")
        tool = _wire.mapping(body.get("start"), "contentBlockStart.start").get("toolUse")
        if tool is None:
            return
        tool = _wire.mapping(tool, "start.toolUse")
        if index in self.calls:
            raise ProviderError("server_error", f"Amazon Bedrock started content block {index} twice.")
        self.calls[index] = ordinal = len(self.calls)
        yield ToolCallDelta(
            ordinal,
            _wire.text(tool.get("toolUseId"), "toolUse.toolUseId"),
            _wire.text(tool.get("name"), "toolUse.name"),
        )

    def _delta(self, body: Mapping[str, Any]) -> Iterator[ProviderEvent]:
        index = _wire.count(body.get("contentBlockIndex"), "contentBlockDelta.contentBlockIndex")
        delta = _wire.mapping(body.get("delta"), "contentBlockDelta.delta")
        if "text" in delta:
            yield TextDelta(_wire.text(delta["text"], "delta.text"))
        elif "toolUse" in delta:
            tool = _wire.mapping(delta["toolUse"], "delta.toolUse")
            fragment = _wire.text(tool.get("input", ""), "delta.toolUse.input")
            call_id = _wire.optional_text(tool.get("toolUseId"), "delta.toolUse.toolUseId")
            name = _wire.optional_text(tool.get("name"), "delta.toolUse.name")
            ordinal = self.calls.get(index)
            if ordinal is None:
                # A call named in its delta rather than in a contentBlockStart. (botocore keeps only the
                # members its service model declares, which today is `input` alone, so through boto3
                # this arrives nameless and is refused here.)
                if name is None:
                    raise ProviderError(
                        "server_error",
                        f"Amazon Bedrock sent tool input for content block {index}, which no contentBlockStart named.",
                    )
                self.calls[index] = ordinal = len(self.calls)
            if fragment:
                self.with_arguments.add(ordinal)
            if fragment or call_id or name:
                yield ToolCallDelta(ordinal, call_id, name, fragment)

    def _stop(self, body: Mapping[str, Any]) -> Iterator[ProviderEvent]:
        reason = _wire.text(body.get("stopReason"), "messageStop.stopReason")
        if reason in MALFORMED_STOPS:
            raise ProviderError("server_error", f"The model's reply was malformed (Bedrock stopReason {reason}).")
        finish = STOP_REASONS.get(reason, "stop")  # a reason newer than this list: the reply ended
        for ordinal in sorted(set(self.calls.values()) - self.with_arguments):
            yield ToolCallDelta(ordinal, arguments="{}")  # a call without input takes no arguments
        self.finished = True
        yield Finish(finish)


# --- the request --------------------------------------------------------------------------------


def converse_request(request: ModelRequest, timeout: float = 30.0) -> dict[str, Any]:
    """The neutral request as ConverseStream parameters (`timeout` bounds fetching all its image URLs)."""
    messages = _messages(request.messages, time.monotonic() + timeout)
    body: dict[str, Any] = {"modelId": request.model, "messages": messages}
    system = "\n\n".join(filter(None, (request.system, _format_instruction(request.response_format))))
    if system:
        body["system"] = [{"text": system}]
    inference: dict[str, Any] = {}
    if request.max_output_tokens is not None:
        inference["maxTokens"] = request.max_output_tokens
    if request.temperature is not None:
        inference["temperature"] = min(max(request.temperature, 0.0), 1.0)  # OpenAI's range is 0..2
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if inference:
        body["inferenceConfig"] = inference
    uses_tools = any("toolUse" in block or "toolResult" in block for turn in messages for block in turn["content"])
    tool_config = _tool_config(request, uses_tools)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    return body


def _format_instruction(response_format: Mapping[str, Any] | None) -> str:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return "Reply with one JSON object and nothing else: no prose, no Markdown code fence."
    if kind == "json_schema":
        schema = (response_format or {}).get("json_schema") or {}
        return (
            "Reply with one JSON value that conforms to this JSON Schema, and nothing else: no prose, no Markdown "
            f"code fence.\n{json.dumps(schema.get('schema') or {})}"
        )
    return ""


def _tool_config(request: ModelRequest, uses_tools: bool) -> dict[str, Any] | None:
    if not request.tools:
        return None
    choice = request.tool_choice
    if choice == "none" and not uses_tools:
        return None
    # Bedrock refuses a conversation holding toolUse or toolResult blocks without a toolConfig, and its
    # toolChoice has no `none`: then the tools are sent with `auto` and the model may still call one.
    # (In Spindle this cannot arise: a run's tool_choice is fixed, so a `none` run never made calls.)
    if isinstance(choice, ForcedFunction):
        tool_choice: dict[str, Any] = {"tool": {"name": choice.name}}
    else:
        tool_choice = {"any": {}} if choice == "required" else {"auto": {}}
    specs = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters or _EMPTY_SCHEMA}}
        if tool.description:
            spec["description"] = tool.description
        specs.append({"toolSpec": spec})
    return {"tools": specs, "toolChoice": tool_choice}


_EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}


def _messages(messages: tuple[ChatMessage, ...], deadline: float) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        content = _content(message, deadline)
        if not content:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(content)
        else:
            turns.append({"role": role, "content": content})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": CONVERSATION_START}]})
    if turns[-1]["role"] == "assistant":  # Bedrock would continue that message (a prefill), not answer it
        turns.append({"role": "user", "content": [{"text": CONVERSATION_CONTINUES}]})
    return turns


def _content(message: ChatMessage, deadline: float) -> list[dict[str, Any]]:
    if message.role == "tool":
        # Bedrock refuses blank text blocks, and a tool's output may be empty.
        output = message.text if message.text.strip() else EMPTY_TOOL_OUTPUT
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": [{"text": output}]}}]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            blocks.append({"text": ASSISTANT_IMAGE} if message.role == "assistant" else _image(part, deadline))
        elif part.text.strip():
            blocks.append({"text": part.text})
    for call in message.calls:
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": _arguments(call.arguments)}})
    return blocks


def _arguments(arguments: str) -> Any:
    """A call's arguments as the JSON object Bedrock's `input` must be."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = arguments
    # Arguments that are not a JSON object (cut off, or another JSON value) cannot be sent as they are:
    # they are wrapped as {"value": …} so that the model still sees what it sent.
    return parsed if isinstance(parsed, dict) else {"value": parsed}


# --- images -------------------------------------------------------------------------------------


def _image(part: ImagePart, deadline: float) -> dict[str, Any]:
    data, declared = image_bytes(part, deadline, MAX_IMAGE_BYTES, "Amazon Bedrock")
    image_format = IMAGE_FORMATS.get((sniffed_media_type(data) or declared or "").lower())
    if image_format is None:
        raise ProviderError(
            "server_error", f"Amazon Bedrock takes png, jpeg, gif or webp images, not {declared or 'unknown data'}."
        )
    return {"image": {"format": image_format, "source": {"bytes": data}}}
