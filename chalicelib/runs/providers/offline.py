"""The offline model: a provider with no model behind it, for `make dev` without a key and for tests.

With no script it is a tiny deterministic model: it calls a function when `tool_choice` requires one
(arguments `{}`), reports tool outputs once they arrive, and otherwise answers `You said: <the last
user text>`, a word at a time; tokens are counted as words. Offered `file_search`, it searches for the
user's last message, then answers with the sentence of the best passage that shares the most words
with the question, citing it with the passage's marker; so `make dev` shows retrieval with no key.
Given a script (a function from the request to the events to yield), it is the test double for every
provider, as httpx's MockTransport is for its transports: the engine cannot tell it from a real one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator

from chalicelib.runs.providers.base import (
    ChatMessage,
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
    searching = any(tool.name == SEARCH_TOOL for tool in request.tools) and request.tool_choice != "none"
    if searching and last is not None and last.role == "user":
        yield ToolCallDelta(0, name=SEARCH_TOOL, arguments=json.dumps({"queries": [last.text]}))
        yield Finish("tool_calls")
        yield Usage(prompt_tokens, 1)
        return
    if last is not None and last.role == "tool" and _called(messages, last) == SEARCH_TOOL:
        text = _answer_from(last.text, _question(messages))
    elif last is not None and last.role == "tool":
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


SEARCH_TOOL = "file_search"  # the engine's built-in tool (runs/file_search.py)
_MARKED = re.compile(r"^(【\d+:\d+†[^】\n]*】)\n", re.MULTILINE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"\w+")


def _called(messages: tuple[ChatMessage, ...], output: ChatMessage) -> str | None:
    """The name of the call a tool message answers."""
    for message in messages:
        for call in message.calls:
            if call.id == output.tool_call_id:
                return call.name
    return None


def _question(messages: tuple[ChatMessage, ...]) -> str:
    return next((message.text for message in reversed(messages) if message.role == "user"), "")


def _answer_from(results: str, question: str) -> str:
    """The best passage's sentence sharing the most words with the question, and its marker."""
    found = _MARKED.search(results)
    if found is None:
        return "I found nothing about that in the files."
    following = _MARKED.search(results, found.end())
    passage = results[found.end() : following.start() if following else len(results)]
    asked = {word.lower() for word in _WORD.findall(question) if len(word) > 2}
    sentences = [part.strip() for part in _SENTENCE.findall(passage) if part.strip()]
    best = max(sentences, key=lambda part: len(asked & {w.lower() for w in _WORD.findall(part)}), default="")
    return f"{best} {found.group(1)}".strip()
