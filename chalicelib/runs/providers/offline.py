"""The offline model: a provider with no model behind it, for `make dev` without a key and for tests.

With no script it is a tiny deterministic model: it calls a function when `tool_choice` requires one
(arguments `{}`), reports tool outputs once they arrive, and otherwise answers `You said: <the last
user text>`, a word at a time; tokens are counted as words. Offered `file_search`, it searches for the
user's last message, then answers with the sentence of the best passage that shares the most words
with the question, citing it with the passage's marker; so `make dev` shows retrieval with no key.
Offered `code_interpreter` and asked to compute something, it writes a small program (the user's
arithmetic, a plot of a CSV file the sandbox has, or a self-check of the tool), runs it, and reports
what it printed, linking the files it saved.
Given a script (a function from the request to the events to yield), it is the test double for every
provider, as httpx's MockTransport is for its transports: the engine cannot tell it from a real one.
"""

from __future__ import annotations

import json
import re
import time
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
    def __init__(self, script: Script | None = None, word_seconds: float = 0.0) -> None:
        self._script = script or echo
        # What a scripted double was asked, for tests; the default model (one per process) keeps nothing.
        self.requests: list[ModelRequest] = []
        self._recording = script is not None
        self._word_seconds = word_seconds  # a pause before each text delta after the first, as a model's

    def stream(self, request: ModelRequest) -> Events:
        if self._recording:
            self.requests.append(request)
        written = False
        for event in self._script(request):
            if isinstance(event, TextDelta):
                if written and self._word_seconds:
                    time.sleep(self._word_seconds)
                written = True
            yield event


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
    coding = any(tool.name == CODE_TOOL for tool in request.tools) and request.tool_choice != "none"
    program = _program_for(_question(messages), request.system) if coding and last and last.role == "user" else None
    if program is not None:
        yield ToolCallDelta(0, name=CODE_TOOL, arguments=json.dumps({"code": program}))
        yield Finish("tool_calls")
        yield Usage(prompt_tokens, len(program.split()))
        return
    searching = any(tool.name == SEARCH_TOOL for tool in request.tools) and request.tool_choice != "none"
    if searching and last is not None and last.role == "user":
        yield ToolCallDelta(0, name=SEARCH_TOOL, arguments=json.dumps({"queries": [last.text]}))
        yield Finish("tool_calls")
        yield Usage(prompt_tokens, 1)
        return
    if last is not None and last.role == "tool" and _called(messages, last) == SEARCH_TOOL:
        text = _answer_from(last.text, _question(messages))
    elif last is not None and last.role == "tool" and _called(messages, last) == CODE_TOOL:
        text = _report_run(last.text)
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


SEARCH_TOOL = "file_search"  # the engine's built-in tools (runs/file_search.py, runs/code_interpreter.py)
CODE_TOOL = "code_interpreter"
_ARITHMETIC = re.compile(r"[-+]?[\d.]+(?:\s*(?:\*\*|[-+*/%^])\s*\(*\s*[-+]?[\d.]+\s*\)*)+")
_COMPUTE = re.compile(
    r"\b(compute|calculate|calc|evaluate|prove|check|test|run|plot|chart|graph|sum|average|mean)\b", re.I
)
_CSV_FILE = re.compile(r"([\w.-]+\.csv)\b")
_SELF_CHECK = """import math
import platform

primes = [n for n in range(2, 50) if all(n % d for d in range(2, math.isqrt(n) + 1))]
print("Python", platform.python_version())
print("primes below 50:", primes)
print("sum of the squares of 1..10:", sum(i * i for i in range(1, 11)))
print("sqrt(2) =", math.sqrt(2))"""
_PLOT = """import csv

with open({name!r}, newline="") as source:
    rows = list(csv.reader(source))
header, data = rows[0], rows[1:]
columns = [[float(row[i]) for row in data] for i in range(len(header))]
print(f"{{len(data)}} rows; columns: {{header}}")
for name, values in zip(header, columns):
    print(f"{{name}}: min {{min(values):g}}, max {{max(values):g}}, mean {{sum(values) / len(values):g}}")
import matplotlib
import matplotlib.pyplot as plt

figure, axes = plt.subplots()
axes.plot(columns[0], columns[1], marker="o")
axes.set_xlabel(header[0])
axes.set_ylabel(header[1])
figure.savefig("plot.png")
plt.close(figure)
print("saved plot.png")"""


def _program_for(question: str, system: str) -> str | None:
    """A small program for what the user asked, if it asks for computing: a plot of a CSV file the
    sandbox has, their arithmetic, or (asked to check the tool, say) a self-check."""
    expression = _ARITHMETIC.search(question)
    if expression is None and not _COMPUTE.search(question) and "code_interpreter" not in question:
        return None
    csv_file = _CSV_FILE.search(question) or _CSV_FILE.search(system)
    if csv_file is not None and re.search(r"\b(plot|chart|graph)\b", question, re.I):
        return _PLOT.format(name=csv_file.group(1))
    if expression is not None:
        return f"result = {expression.group(0).replace('^', '**').strip()}\nprint(result)"
    return _SELF_CHECK


def _report_run(output: str) -> str:
    """What the program printed, and links to the files it saved."""
    saved = re.findall(r"sandbox:/mnt/data/[^\s,\]]+", output)
    logs = re.sub(r"\n?\[(Files saved|\d+ image\(s\) shown)[^\]]*\]", "", output).strip()
    text = f"I ran the code in the sandbox. It printed:\n```\n{logs}\n```"
    for link in saved:
        text += f"\n[{link.rsplit('/', 1)[-1]}]({link})"
    return text


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
