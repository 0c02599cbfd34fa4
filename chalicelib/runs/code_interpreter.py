"""The code_interpreter tool, which the engine runs itself (no requires_action).

When a run has the tool, the model is offered a function, `code_interpreter`, taking Python. When the
model calls it, the engine runs the code in the thread's sandbox session (sandbox/), which keeps its
variables and files between calls and runs for an hour of idleness, and records the call as the
official RunStepDetailsToolCallsCodeObject: its `input`, and its `outputs`, the logs (stdout and
stderr, as they interleaved) and an `image` for each figure shown or image file written.

The user's files (the assistant's and the thread's `tool_resources.code_interpreter.file_ids`, and
files attached to the thread's messages for this tool) are put in the session's working directory under
their filenames before the code runs. Files the code writes become Spindle files (purpose
`assistants_output`): the model links them as `sandbox:/mnt/data/<name>`, which the reply's text
annotates as `file_path` (domain/citations.py), and images among them are shown in the reply as
`image_file` parts.

Each call keeps, beside its official fields, what the model sent and the files the code wrote (`_model`):
the model's history is rebuilt from the steps, and served steps never show it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from chalicelib.domain import files as file_domain
from chalicelib.runs.builtin_calls import PRIVATE, calls
from chalicelib.runs.providers.base import FunctionTool
from chalicelib.runs.providers.images import sniffed_media_type
from chalicelib.runs.resources import ToolResources
from chalicelib.storage import files as file_store
from chalicelib.storage import threads as thread_store
from chalicelib.storage.records import ListQuery, StoredRun

TOOL_NAME = "code_interpreter"
MAX_INPUT_FILES = 20  # as the official tool_resources.code_interpreter.file_ids
MAX_NAME_BYTES = 255  # a filename, on the file systems the sandboxes use
# A model turn's code calls run one after another in one worker (a Lambda of 15 minutes); past this
# much of their time, further calls of the turn are not run (the model is told so).
TURN_CODE_SECONDS = 480.0
MODEL_LOG_CHARS = 8000  # of an execution's logs shown to the model (the step keeps them all)
LINK_PREFIX = "sandbox:/mnt/data/"
_CODE_KEY = re.compile(r'"code"\s*:\s*"')

TOOL = FunctionTool(
    name=TOOL_NAME,
    description=(
        "Run Python code in a stateful sandbox, like a Jupyter notebook: variables and files persist between "
        "calls in this conversation. Returns what the code prints (and the value of a last bare expression). "
        "There is no internet access."
    ),
    parameters={
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
        "additionalProperties": False,
    },
)


@dataclass(frozen=True)
class CodeInterpreter:
    """The tool as a run has it: the user's files for the sandbox, by id, with the names they get there."""

    files: Mapping[str, str]  # file id -> filename in the working directory


def instructions(setup: CodeInterpreter, working_directory: str) -> str:
    listed = ", ".join(setup.files.values())
    files = f" The user's files are there: {listed}." if listed else ""
    return (
        "You can run Python with the `code_interpreter` tool; use it for calculations and data analysis "
        f"rather than working them out yourself. The working directory is {working_directory}.{files} "
        "Save files for the user in the working directory (a relative path such as `out.csv`) and link to "
        f"each as {LINK_PREFIX}<name>, for example [out.csv]({LINK_PREFIX}out.csv). "
        "Plots shown with matplotlib are displayed to the user."
    )


def _attached(project_id: str, thread_id: str) -> list[str]:
    """Files attached to the thread's recent messages for this tool (one Query)."""
    page = thread_store.list_messages(project_id, thread_id, ListQuery(limit=100, order="desc"))
    return [
        attachment["file_id"]
        for message in reversed(page.items)  # oldest first: a later file of the same name gets its id added
        for attachment in (message.attachments or [])
        if any(tool.get("type") == TOOL_NAME for tool in attachment.get("tools") or [])
    ]


def _names(found: Mapping[str, Mapping[str, Any]], ids: Iterable[str]) -> dict[str, str]:
    """Each file's name in the working directory: its filename, made unique with its id if two share one."""
    named: dict[str, str] = {}
    taken: set[str] = set()
    for file_id in ids:
        file = found.get(file_id)
        if file is None:
            continue
        name = PurePosixPath(str(file["filename"])).name or file_id
        if name in taken or name.startswith("."):
            path = PurePosixPath(name)
            name = f"{path.stem}-{file_id}{path.suffix}"
        name = _within_bytes(name, MAX_NAME_BYTES)
        taken.add(name)
        named[file_id] = name
    return named


def _within_bytes(name: str, limit: int) -> str:
    """The name, its stem shortened until it fits a file system's `limit` bytes (its suffix kept)."""
    path = PurePosixPath(name)
    stem, suffix = path.stem, path.suffix if len(path.suffix.encode()) < limit // 2 else ""
    while len((stem + suffix).encode()) > limit:
        stem = stem[:-1]
    return stem + suffix


def configured(stored: StoredRun, resources: ToolResources) -> CodeInterpreter | None:
    """The run's code_interpreter, if it has the tool."""
    if not any(tool.get("type") == TOOL_NAME for tool in stored.run["tools"]):
        return None
    ref = stored.ref
    ids = resources.ids(TOOL_NAME, "file_ids") + _attached(ref.project_id, ref.thread_id)
    ids = list(dict.fromkeys(ids))[:MAX_INPUT_FILES]
    found = file_store.get_many(ref.project_id, set(ids)) if ids else {}
    live = {file_id: file for file_id, file in found.items() if file_domain.is_live(file)}
    return CodeInterpreter(_names(live, ids))


# --- what earlier rounds left in the run's steps ---------------------------------------------------


def written_files(steps: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The files the run's code wrote, by their path in the working directory (the latest of each)."""
    found: dict[str, str] = {}
    for call in calls(steps, TOOL_NAME):
        found.update(call[PRIVATE].get("files") or {})
    return found


def images_to_show(steps: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The images the run's code made since its last message: the next message shows them."""
    last_message = max((i for i, step in enumerate(steps) if step["type"] == "message_creation"), default=-1)
    return tuple(
        output["image"]["file_id"]
        for call in calls(steps[last_message + 1 :], TOOL_NAME)
        for output in call[TOOL_NAME]["outputs"]
        if output["type"] == "image"
    )


def model_output(call: Mapping[str, Any]) -> str:
    """What the model is shown of an execution: its logs (the last MODEL_LOG_CHARS), and what it made."""
    private = call[PRIVATE]
    if private.get("error"):
        return str(private["error"])
    logs = "".join(output["logs"] for output in call[TOOL_NAME]["outputs"] if output["type"] == "logs")
    if len(logs) > MODEL_LOG_CHARS:
        logs = f"[... {len(logs) - MODEL_LOG_CHARS} characters cut ...]\n" + logs[-MODEL_LOG_CHARS:]
    parts = [logs or "(no output)"]
    images = sum(1 for output in call[TOOL_NAME]["outputs"] if output["type"] == "image")
    if images:
        parts.append(f"[{images} image(s) shown to the user]")
    written = private.get("files") or {}
    if written:
        parts.append("[Files saved: " + ", ".join(f"{LINK_PREFIX}{path}" for path in written) + "]")
    return "\n".join(parts)


# --- running a call ----------------------------------------------------------------------------------


def code_of(arguments: str) -> str:
    """The code the model sent: `{"code": ...}`, or, from a model that sends bare code, the arguments."""
    if not arguments.lstrip().startswith("{"):
        return arguments
    try:
        parsed = json.loads(arguments)
    except ValueError as error:
        raise ValueError(f"The code_interpreter arguments are not JSON ({error}).") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("code"), str):
        raise ValueError('code_interpreter takes `{"code": "<Python>"}`.')
    return str(parsed["code"])


def _call(call_id: str, code: str, outputs: list[dict[str, Any]], private: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": TOOL_NAME, TOOL_NAME: {"input": code, "outputs": outputs}, PRIVATE: private}


def session_key(project_id: str, thread_id: str) -> str:
    return f"{project_id}/{thread_id}"


def not_run(call_id: str, arguments: str, why: str) -> dict[str, Any]:
    """A call the engine did not run (the run was cancelled, the turn's time for code ran out)."""
    try:
        code = code_of(arguments)
    except ValueError:
        code = arguments
    return _call(call_id, code, [{"type": "logs", "logs": f"[Not run: {why}.]"}], {"arguments": arguments})


def run_call(
    project_id: str, thread_id: str, setup: CodeInterpreter, call_id: str, arguments: str, stop: threading.Event
) -> dict[str, Any]:
    """Run the code the model sent in the thread's session: the call's tool_calls entry, with its
    outputs, and `_model` (its arguments, the files it wrote, any error in the arguments). A sandbox
    that cannot start is said in the logs, as an error of the code would be, and the run goes on."""
    from chalicelib.sandbox import SandboxUnavailable, sandbox_for  # runs without code never load it

    private: dict[str, Any] = {"arguments": arguments}
    try:
        code = code_of(arguments)
    except ValueError as error:
        private["error"] = str(error)
        return _call(call_id, arguments, [], private)
    inputs = {file_id: (name, _reader(project_id, file_id)) for file_id, name in setup.files.items()}
    try:
        execution = sandbox_for().session(session_key(project_id, thread_id)).execute(code, stop, inputs)
    except SandboxUnavailable as error:
        unavailable = f"[The sandbox could not run the code: {error}.]"
        return _call(call_id, code, [{"type": "logs", "logs": unavailable}], {**private, "files": {}})
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": execution.logs}] if execution.logs else []
    for number, figure in enumerate(execution.figures):
        stored = file_domain.create_output_file(project_id, f"figure-{number}.png", figure)
        outputs.append({"type": "image", "image": {"file_id": stored["id"]}})
    written: dict[str, str] = {}
    for output in execution.files:
        stored = file_domain.create_output_file(project_id, f"/mnt/data/{output.path}", output.content)
        written[output.path] = stored["id"]
        if sniffed_media_type(output.content):
            outputs.append({"type": "image", "image": {"file_id": stored["id"]}})
    private["files"] = written
    return _call(call_id, code, outputs, private)


def _reader(project_id: str, file_id: str) -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        readable = file_domain.readable_file(project_id, file_id)
        return readable[1] if readable is not None else None

    return read


def _hex(digits: str) -> int:
    """Four hex digits' value; -1 if they are not that."""
    if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        return -1
    return int(digits, 16)


class CodeStream:
    """The code of a call as its arguments stream in (`{"code": "..."}`, JSON-escaped): each fragment
    fed returns the code it completed, so that the step's deltas carry the code as the model writes it."""

    def __init__(self) -> None:
        self._raw = ""
        self._at = 0  # how far `_raw` is read
        self._phase = "start"  # start | seek | string | done | bare

    def feed(self, fragment: str) -> str:
        self._raw += fragment
        if self._phase == "start":
            stripped = self._raw.lstrip()
            if not stripped:
                return ""
            self._phase = "seek" if stripped.startswith("{") else "bare"
        if self._phase == "bare":
            fresh, self._at = self._raw[self._at :], len(self._raw)
            return fresh
        if self._phase == "seek":
            start = self._value_start()
            if start is None:
                return ""
            self._at, self._phase = start, "string"
        return self._decode() if self._phase == "string" else ""

    def _value_start(self) -> int | None:
        found = _CODE_KEY.search(self._raw)
        return found.end() if found else None

    def _decode(self) -> str:
        out: list[str] = []
        raw, at = self._raw, self._at
        while at < len(raw):
            char = raw[at]
            if char == '"':
                self._phase = "done"
                at += 1
                break
            if char != "\\":
                out.append(char)
                at += 1
                continue
            if at + 1 >= len(raw):
                break  # the escape is not complete yet
            kind = raw[at + 1]
            if kind == "u":
                if at + 6 > len(raw):
                    break
                code = _hex(raw[at + 2 : at + 6])
                low = _hex(raw[at + 8 : at + 12]) if 0xD800 <= code < 0xDC00 else None
                if code < 0 or (low is not None and at + 12 <= len(raw) and not 0xDC00 <= low < 0xE000):
                    self._phase = "done"  # a broken escape: the code is not streamed further (the call says why)
                    break
                if low is None:
                    out.append(chr(code))
                    at += 6
                elif at + 12 > len(raw):
                    break  # a surrogate pair: wait for its second half
                else:
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    at += 12
                continue
            out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(kind, kind))
            at += 2
        self._at = at
        return "".join(out)
