"""The offline model: a provider with no model behind it, for `make dev` without a key and for tests.

With no script it is a tiny deterministic model: it calls a function when `tool_choice` requires one
(arguments `{}`), reports tool outputs once they arrive, and otherwise answers `You said: <the last
user text>`, a word at a time; tokens are counted as words. Given a script (a function from the request
to the events to yield), it is the test double for every provider, as httpx's MockTransport is for its
transports: the engine cannot tell it from a real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from chalicelib.runs.providers.base import (
    Events,
    Finish,
    ForcedFunction,
    ModelRequest,
    ProviderEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

Script = Callable[[ModelRequest], Iterable[ProviderEvent]]


class OfflineProvider:
    def __init__(self, script: Script | None = None) -> None:
        self._script = script or echo
        # What a scripted double was asked, for tests; the default model (one per process) keeps nothing.
        self.requests: list[ModelRequest] = []
        self._recording = script is not None

    def stream(self, request: ModelRequest) -> Events:
        if self._recording:
            self.requests.append(request)
        yield from self._script(request)


def echo(request: ModelRequest) -> Iterator[ProviderEvent]:
    """The default script."""
    messages = request.messages
    prompt_tokens = len(request.system.split()) + sum(len(message.text.split()) for message in messages)
    last = messages[-1] if messages else None
    forced = _forced_function(request)
    if forced and (last is None or last.role != "tool"):
        yield ToolCallDelta(0, name=forced, arguments="{")
        yield ToolCallDelta(0, arguments="}")
        yield Finish("tool_calls")
        yield Usage(prompt_tokens, 1)
        return
    if last is not None and last.role == "tool":
        outputs = [message.text for message in messages if message.role == "tool"]
        text = "Tool results: " + json.dumps(outputs)
    else:  # with no messages, the instructions are the last thing said (as they were the first message)
        text = f"You said: {last.text if last is not None else request.system}"
    words = text.split(" ")
    yield TextDelta(words[0])
    for word in words[1:]:
        yield TextDelta(" " + word)
    yield Finish("stop")
    yield Usage(prompt_tokens, len(words))


def _forced_function(request: ModelRequest) -> str | None:
    if not request.tools or request.tool_choice == "none":
        return None
    if isinstance(request.tool_choice, ForcedFunction):
        return request.tool_choice.name
    if request.tool_choice == "required":
        return request.tools[0].name
    return None
