"""The AWS sandbox: Amazon Bedrock AgentCore Code Interpreter, a managed sandbox, driven through
boto3's `bedrock-agentcore` client.

A thread's session is started with `start_code_interpreter_session` and kept on the thread's record
(its id, when it was last used, which of the user's files it has), so that every Lambda that runs one of
the thread's runs resumes it: AgentCore keeps the session's Python state between `executeCode` calls.
The user's files go in with the `writeFiles` tool; after each execution, a short snippet run in the same
session lists the working directory and saves the figures the code left open, and the files that are
new or changed are read back with `readFiles`.

AgentCore's `sessionTimeoutSeconds` is a lifetime from the start, whatever the activity, so a session
is started with the idle timeout as its lifetime, and one unused for that long is not resumed: either
way the next execution starts a new session (variables gone; the user's files are put in again). A
cancel, or the wall-clock limit, stops the session, which is the only way AgentCore stops running code.
The code works in the session's own working directory, where writeFiles puts the user's files.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.config import settings
from chalicelib.sandbox import Execution, InputFiles, Limits, OutputFile, given, is_figure, outputs_to_keep
from chalicelib.storage import threads as thread_store

log = logging.getLogger("spindle.sandbox")

LANGUAGE = "python"
MAX_SESSION_SECONDS = 28_800  # AgentCore's longest session lifetime
FIGURES = ".spindle-figures"
# Run in the session after each execution: save open figures, and list the working directory's files.
_SNAPSHOT = f"""
def __spindle_snapshot():
    import json, os, stat, sys
    figures = []
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        os.makedirs({FIGURES!r}, exist_ok=True)
        for number in pyplot.get_fignums()[:10]:
            path = os.path.join({FIGURES!r}, "figure-%d.png" % len(figures))
            pyplot.figure(number).savefig(path, format="png")
            figures.append(path)
        pyplot.close("all")
    files = {{}}
    for root, dirs, names in os.walk("."):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = os.path.normpath(os.path.join(root, name))
            status = os.lstat(path)
            if not name.startswith(".") and stat.S_ISREG(status.st_mode) and len(files) < 2000:
                files[path] = [status.st_size, status.st_mtime_ns]
    print(json.dumps({{"files": files, "figures": figures}}))
__spindle_snapshot()
del __spindle_snapshot
"""


class SessionGone(Exception):
    """AgentCore no longer has the session (it timed out, or was stopped)."""


def _client() -> Any:
    import boto3

    return boto3.client("bedrock-agentcore", region_name=settings.region, endpoint_url=settings.agentcore_endpoint)


class AgentCoreSandbox:
    def __init__(
        self,
        client: Any = None,
        interpreter_id: str | None = None,
        limits: Limits | None = None,
        idle_seconds: float | None = None,
    ) -> None:
        self._client = client
        self.interpreter_id = interpreter_id or settings.agentcore_interpreter_id
        self.limits = limits or settings.code_limits
        self.idle_seconds = idle_seconds or settings.code_session_idle_seconds

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _client()
        return self._client

    @property
    def working_directory(self) -> str:
        # writeFiles and executeCode share the session's own working directory; the model is told to
        # use relative paths, and its sandbox:/mnt/data/... links are read as relative to it
        return "the current directory"

    def session(self, key: str) -> AgentCoreSession:
        project_id, _, thread_id = key.partition("/")
        return AgentCoreSession(self, project_id, thread_id)


class AgentCoreSession:
    def __init__(self, sandbox: AgentCoreSandbox, project_id: str, thread_id: str) -> None:
        self.sandbox = sandbox
        self.project_id, self.thread_id = project_id, thread_id
        kept = thread_store.get_code_session(project_id, thread_id)
        if kept is not None and time.time() - float(kept.get("last_used", 0)) > sandbox.idle_seconds:
            self._stop(str(kept["session_id"]))  # idle too long: as the official tool's, it has ended
            kept = None
        self._kept: dict[str, Any] | None = kept

    @property
    def input_ids(self) -> frozenset[str]:
        return frozenset(self._kept["inputs"]) if self._kept else frozenset()

    def put_files(self, files: Mapping[str, tuple[str, bytes]]) -> list[str]:
        inputs = {file_id: (name, given(content)) for file_id, (name, content) in files.items()}
        self._with_session(lambda session_id: self._put(session_id, inputs))
        self._keep()
        return []

    def execute(self, code: str, stop: threading.Event, inputs: InputFiles | None = None) -> Execution:
        def run(session_id: str) -> Execution:
            self._put(session_id, inputs or {})  # again in a new session, should the old one be gone
            return self._execute(session_id, code, stop)

        try:
            result: Execution = self._with_session(run)
            return result
        finally:
            if self._kept is not None:
                self._kept["last_used"] = time.time()
            self._keep()  # or forget a session that a stop ended

    # --- the session ---

    def _with_session(self, work: Any) -> Any:
        """`work(session_id)` in the thread's session, started if it has none; if AgentCore has lost
        the session, once more in a new one."""
        for attempt in range(2):
            if self._kept is None:
                self._start()
            assert self._kept is not None
            try:
                return work(self._kept["session_id"])
            except SessionGone:
                if attempt == 1:
                    raise
                self._kept = None
        raise AssertionError("unreachable")

    def _start(self) -> None:
        lifetime = int(min(MAX_SESSION_SECONDS, max(60, self.sandbox.idle_seconds)))
        started = self.sandbox.client.start_code_interpreter_session(
            codeInterpreterIdentifier=self.sandbox.interpreter_id,
            name=f"spindle-{self.thread_id}"[:100],
            sessionTimeoutSeconds=lifetime,
        )
        self._kept = {"session_id": started["sessionId"], "last_used": time.time(), "inputs": []}
        self._keep()

    def _keep(self) -> None:
        thread_store.set_code_session(self.project_id, self.thread_id, self._kept)

    def _stop(self, session_id: str) -> None:
        try:
            self.sandbox.client.stop_code_interpreter_session(
                codeInterpreterIdentifier=self.sandbox.interpreter_id, sessionId=session_id
            )
        except Exception:  # already gone, or AgentCore hiccups: it ends at its lifetime anyway
            log.info("stopping code interpreter session %s failed", session_id, exc_info=True)

    # --- tools ---

    def _invoke(self, session_id: str, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """One tool call, its results merged: content blocks, structured content, and whether it erred."""
        from botocore.exceptions import ClientError

        try:
            response = self.sandbox.client.invoke_code_interpreter(
                codeInterpreterIdentifier=self.sandbox.interpreter_id,
                sessionId=session_id,
                name=tool,
                arguments=dict(arguments),
            )
            return _merged(response["stream"])
        except ClientError as error:  # in the stream too: botocore's EventStreamError, code in camelCase
            details = error.response.get("Error", {})
            code, message = str(details.get("Code", "")).lower(), str(details.get("Message", "")).lower()
            if code == "resourcenotfoundexception" or (code == "validationexception" and "session" in message):
                raise SessionGone(str(error)) from error
            raise

    def _put(self, session_id: str, files: InputFiles) -> None:
        """Write the files the session (this one: a replaced session has none) does not have yet."""
        assert self._kept is not None and self._kept["session_id"] == session_id
        content: list[dict[str, Any]] = []
        written = []
        for file_id, (name, load) in files.items():
            if file_id in self._kept["inputs"] or (data := load()) is None:
                continue
            try:
                content.append({"path": name, "text": data.decode("utf-8")})
            except UnicodeDecodeError:
                content.append({"path": name, "blob": data})
            written.append(file_id)
        if not content:
            return
        result = self._invoke(session_id, "writeFiles", {"content": content})
        if result["isError"]:
            raise RuntimeError(f"AgentCore could not write the files: {_text(result)}")
        self._kept["inputs"] = sorted({*self._kept["inputs"], *written})

    def _snapshot(self, session_id: str) -> dict[str, Any]:
        result = self._invoke(session_id, "executeCode", {"code": _SNAPSHOT, "language": LANGUAGE})
        for line in reversed(_stdout(result).splitlines()):
            if line.startswith("{"):
                parsed: dict[str, Any] = json.loads(line)
                return parsed
        raise RuntimeError(f"the sandbox could not list its files: {_text(result)}")

    def _read(self, session_id: str, paths: list[str]) -> dict[str, bytes]:
        if not paths:
            return {}
        result = self._invoke(session_id, "readFiles", {"paths": paths})
        found: dict[str, bytes] = {}
        for block in result["content"]:
            resource = block.get("resource") or {}
            uri = str(resource.get("uri") or block.get("uri") or "")
            named = [p for p in paths if uri == p or uri.endswith("/" + p)]
            path = max(named, key=len, default=None)  # a/b.csv, not b.csv, for .../a/b.csv
            if path is None:
                continue
            if resource.get("blob") is not None:
                found[path] = bytes(resource["blob"])
            elif resource.get("text") is not None:
                found[path] = str(resource["text"]).encode()
        return found

    def _execute(self, session_id: str, code: str, stop: threading.Event) -> Execution:
        """The code, and the snippets before and after it (which run in the code's namespace, so they
        are watched as it is): a cancel or the wall-clock limit stops the session, nothing else stops
        code in AgentCore."""
        ended = threading.Event()
        why: list[str] = []

        def watch() -> None:
            deadline = time.monotonic() + self.sandbox.limits.wall_seconds
            while not ended.wait(0.1):
                if stop.is_set() or time.monotonic() >= deadline:
                    why.append("cancelled" if stop.is_set() else "time")
                    self._stop(session_id)
                    return

        watcher = threading.Thread(target=watch, daemon=True, name="agentcore-watch")
        watcher.start()
        result: dict[str, Any] = {"content": [], "structured": {}, "isError": True}
        before: dict[str, Any] = {}
        after: dict[str, Any] = {"files": {}, "figures": []}
        try:
            before = self._snapshot(session_id)["files"]
            result = self._invoke(session_id, "executeCode", {"code": code, "language": LANGUAGE})
            after = self._snapshot(session_id)
        except (SessionGone, RuntimeError):
            if not why:
                raise
        finally:
            ended.set()
            watcher.join()
        logs = _logs(result, self.sandbox.limits.output_bytes)
        if why:
            self._kept = None
            reason = (
                "the run was cancelled"
                if why[0] == "cancelled"
                else f"the execution ran for {self.sandbox.limits.wall_seconds:g} s, its time limit"
            )
            note = f"[Stopped: {reason}. The session ended: the next execution starts a new one.]"
            return Execution(logs="\n".join(part for part in (logs, note) if part), failed=True)
        changed = {path: mark[0] for path, mark in after["files"].items() if before.get(path) != mark}
        wanted, skipped = outputs_to_keep(changed)
        contents = self._read(session_id, wanted + list(after["figures"]))
        files = tuple(
            OutputFile(path, data)
            for path in wanted
            if (data := contents.get(path)) is not None and len(data) <= settings.max_file_bytes
        )
        figures = tuple(data for path in after["figures"] if (data := contents.get(path, b"")) and is_figure(data))
        return Execution(
            logs="\n".join(part for part in (logs, *skipped) if part),
            failed=bool(result["isError"]),
            figures=figures,
            files=files,
            skipped_files=tuple(skipped),
        )


def _merged(stream: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The `result` events of an invoke's stream as one result. An error event in the stream raises
    from botocore's iteration (EventStreamError, a ClientError), which `_invoke` handles."""
    merged: dict[str, Any] = {"content": [], "structured": {}, "isError": False}
    for event in stream:
        result = event.get("result")
        if result is not None:
            merged["content"] += list(result.get("content") or [])
            merged["structured"].update(result.get("structuredContent") or {})
            merged["isError"] = merged["isError"] or bool(result.get("isError"))
    return merged


def _text(result: Mapping[str, Any]) -> str:
    return "".join(str(block.get("text") or "") for block in result["content"] if block.get("type") == "text")


def _stdout(result: Mapping[str, Any]) -> str:
    structured = result["structured"]
    return str(structured["stdout"]) if structured.get("stdout") is not None else _text(result)


def _logs(result: Mapping[str, Any], limit: int) -> str:
    """stdout then stderr (AgentCore keeps them apart), or the text content, within `limit` bytes."""
    structured = result["structured"]
    if "stdout" in structured or "stderr" in structured:
        parts = [str(structured.get("stdout") or ""), str(structured.get("stderr") or "")]
        text = "\n".join(part.rstrip("\n") for part in parts if part)
    else:
        text = _text(result).rstrip("\n")
    data = text.encode()
    if len(data) > limit:
        text = data[:limit].decode("utf-8", "ignore") + f"\n[{len(data) - limit} more bytes of output were dropped.]"
    return text
