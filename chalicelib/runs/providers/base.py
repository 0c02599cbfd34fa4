"""The one interface every model provider implements: a neutral request in, typed events out, as the
model produces them.

A provider knows nothing of runs, threads or DynamoDB, and the engine knows nothing of any provider's
wire format: the OpenAI chat-completions mapping lives in openai_compatible.py, Amazon Bedrock's
ConverseStream mapping in bedrock.py. Adding a provider means writing one class with `stream()`.

A provider turns every malformed, broken or refused reply into a `ProviderError` at its own boundary;
`collect()` then checks that the events themselves make a reply (a finish, arguments only for calls
that were named), so nothing malformed reaches the engine.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

# --- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image, as bytes (an uploaded file) or as a URL the user gave; `detail` is OpenAI's hint."""

    data: bytes | None = None
    media_type: str | None = None  # with data: image/png, image/jpeg, image/gif or image/webp
    url: str | None = None
    detail: str | None = None


Part: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True)
class CalledFunction:
    """A function call the model made earlier in this run, replayed in the conversation."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One turn. `assistant` turns may call functions; a `tool` turn answers one call."""

    role: Literal["user", "assistant", "tool"]
    parts: tuple[Part, ...] = ()
    calls: tuple[CalledFunction, ...] = ()
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(part.text for part in self.parts if isinstance(part, TextPart))


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None  # a JSON Schema object
    strict: bool | None = None


@dataclass(frozen=True)
class ForcedFunction:
    """tool_choice naming one function: the model must call it."""

    name: str


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | ForcedFunction


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str  # the run's instructions ("" for none)
    messages: tuple[ChatMessage, ...]
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    # None or {"type": "text"}: free text; {"type": "json_object"}; {"type": "json_schema", "json_schema": {...}}
    response_format: Mapping[str, Any] | None = None


# --- the events a provider yields ---------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the `index`th function call: its id and name when they become known, and the next
    fragment of its JSON arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


ProviderEvent: TypeAlias = TextDelta | ToolCallDelta | Usage | Finish
# A provider's reply: a generator, so that the engine can close it (and the model call) mid-way.
Events: TypeAlias = Generator[ProviderEvent, None, None]


class ProviderError(Exception):
    """The model could not answer. `code` becomes the run's last_error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Boundary:
    """Type checks for values a provider takes from its wire (SDKs build stream objects without
    validating them), each failing as a ProviderError that names the field: `source` says whose."""

    def __init__(self, source: str, counts_from_zero: bool = False) -> None:
        self.source = source  # e.g. "The model provider sent a malformed response"
        self.counts_from_zero = counts_from_zero  # refuse negative counts too

    def malformed(self, field: str, value: Any) -> ProviderError:
        return ProviderError("server_error", f"{self.source}: `{field}` is {type(value).__name__}.")

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.malformed(field, value)
        return value

    def optional_text(self, value: Any, field: str) -> str | None:
        return None if value is None else self.text(value, field)

    def count(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or (self.counts_from_zero and value < 0):
            raise self.malformed(field, value)
        return value

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.malformed(field, value)
        return value


class Provider(Protocol):
    def stream(self, request: ModelRequest) -> Events:
        """Yield the reply's events as the model produces them, ending with `Finish` (and `Usage`
        before or after it). Raise `ProviderError` for anything that is not a reply. Closing the
        generator early (a cancel) must end the model call."""
        ...


# --- a whole reply ------------------------------------------------------------------------------


@dataclass
class FunctionCallReply:
    id: str | None
    name: str
    argument_deltas: list[str] = field(default_factory=list)  # as streamed
    index: int = 0  # the provider's index of the call

    @property
    def arguments(self) -> str:
        return "".join(self.argument_deltas)


@dataclass
class Reply:
    """A provider's events, put together."""

    text_deltas: list[str] = field(default_factory=list)  # as streamed; the text is their concatenation
    calls: list[FunctionCallReply] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.text_deltas)


class Collector:
    """Puts a provider's events together as they arrive: the reply so far (`partial`), and the whole
    reply once the stream has ended (`reply()`), refusing streams that do not make one."""

    def __init__(self) -> None:
        self.partial = Reply()
        self._calls: dict[int, FunctionCallReply] = {}
        self._finished = False

    def add(self, item: ProviderEvent) -> None:
        reply = self.partial
        if isinstance(item, TextDelta):
            if item.text:
                reply.text_deltas.append(item.text)
        elif isinstance(item, ToolCallDelta):
            call = self._calls.setdefault(item.index, FunctionCallReply(None, "", index=item.index))
            call.id = call.id or item.id
            call.name = call.name or item.name or ""
            if item.arguments:
                call.argument_deltas.append(item.arguments)
            reply.calls = [self._calls[index] for index in sorted(self._calls)]
        elif isinstance(item, Usage):
            reply.prompt_tokens, reply.completion_tokens = item.prompt_tokens, item.completion_tokens
        elif isinstance(item, Finish):
            reply.finish_reason, self._finished = item.reason, True
        else:
            raise ProviderError("server_error", f"The model provider yielded {type(item).__name__}, not an event.")

    def reply(self) -> Reply:
        if not self._finished:
            raise ProviderError("server_error", "The model provider's stream ended before the reply did.")
        if any(not call.name for call in self.partial.calls):
            raise ProviderError("server_error", "The model provider sent a tool call without a function name.")
        return self.partial


def collect(events: Iterable[ProviderEvent]) -> Reply:
    """Put a whole stream of events together into a reply."""
    collector = Collector()
    for item in events:
        collector.add(item)
    return collector.reply()
