"""Sandboxes for the code_interpreter tool: where the model's Python runs, one session per thread.

`sandbox_for()` is the configured kind: on AWS, Amazon Bedrock AgentCore Code Interpreter
(sandbox/agentcore.py); locally, a process on this machine, isolated with bubblewrap when the machine
has it (sandbox/local.py). Both keep a session per thread (its variables and its files) until it has
been idle for `settings.code_session_idle_seconds`, as the official tool's sessions last an hour.

A session's working directory is where the user's files are put and where the code writes what it
makes; the run (runs/code_interpreter.py) turns new or changed files into Spindle files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.config import CodeLimits as Limits
from chalicelib.config import settings

__all__ = [
    "MAX_OUTPUT_FILES",
    "PNG",
    "WORKING_DIRECTORY",
    "Execution",
    "InputFiles",
    "Limits",
    "OutputFile",
    "Sandbox",
    "SandboxUnavailable",
    "Session",
    "given",
    "is_figure",
    "outputs_to_keep",
    "sandbox_for",
]

WORKING_DIRECTORY = "/mnt/data"  # as the official tool's; links the model writes say sandbox:/mnt/data/...
MAX_OUTPUT_FILES = 20  # files an execution wrote that are kept
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class OutputFile:
    """A file the code wrote (new or changed), by its path under the working directory."""

    path: str
    content: bytes


@dataclass(frozen=True)
class Execution:
    """What one execution did: its output (stdout and stderr as they interleaved, capped, with a note
    of any limit it hit), the figures it showed, and the files it wrote."""

    logs: str
    failed: bool
    figures: tuple[bytes, ...] = ()
    files: tuple[OutputFile, ...] = ()
    skipped_files: tuple[str, ...] = field(default=())  # too large or too many: named in `logs`


# The user's files a session should have: by file id, the name it gets and a way to read it (called only
# when the session does not have it yet; None if the file is gone meanwhile).
InputFiles = Mapping[str, tuple[str, Callable[[], bytes | None]]]


class SandboxUnavailable(Exception):
    """A session could not be started (or run): the execution's logs say so, and the run goes on."""


class Session(Protocol):
    """One thread's sandbox."""

    @property
    def input_ids(self) -> frozenset[str]:
        """The Spindle files already put in the working directory."""

    def put_files(self, files: Mapping[str, tuple[str, bytes]]) -> list[str]:
        """Put files in the working directory (by file id: name, content); notes on any not put."""

    def execute(self, code: str, stop: threading.Event, inputs: InputFiles | None = None) -> Execution:
        """Run code, with `inputs` in the working directory first (those the session lacks); `stop`
        set (a cancel) interrupts it."""


def given(content: bytes) -> Callable[[], bytes | None]:
    """A file's content, already read, as InputFiles take it."""
    return lambda: content


def is_figure(data: bytes | None) -> bool:
    """Whether what the sandbox left as a shown figure is one: a PNG within the file size limit."""
    return data is not None and data.startswith(PNG) and len(data) <= settings.max_file_bytes


def outputs_to_keep(sizes: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """Of the files an execution wrote (path: size), those to read back, in path order, and a note on
    each left out: over the file size limit, or past MAX_OUTPUT_FILES."""
    kept: list[str] = []
    notes: list[str] = []
    for path in sorted(sizes):
        if sizes[path] > settings.max_file_bytes:
            notes.append(f"[{path} was not saved: it is over {settings.max_file_bytes} bytes.]")
        elif len(kept) == MAX_OUTPUT_FILES:
            notes.append(f"[{path} was not saved: at most {MAX_OUTPUT_FILES} files per execution.]")
        else:
            kept.append(path)
    return kept, notes


class Sandbox(Protocol):
    """Where sessions come from."""

    def session(self, key: str) -> Session:
        """The session of `key` (a project's thread), resumed, or started if it has none or it expired."""

    @property
    def working_directory(self) -> str:
        """The working directory as the code sees it."""


_configured: Sandbox | None = None
_lock = threading.Lock()


def sandbox_for() -> Sandbox:
    """The configured sandbox, one per process."""
    global _configured
    with _lock:
        if _configured is None:
            if settings.code_sandbox == "agentcore":
                from chalicelib.sandbox.agentcore import AgentCoreSandbox

                _configured = AgentCoreSandbox()
            else:
                from chalicelib.sandbox.local import LocalSandbox

                _configured = LocalSandbox.configured()
        return _configured
