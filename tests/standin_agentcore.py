"""A stand-in for boto3's `bedrock-agentcore` client, for the code_interpreter sessions of
sandbox/agentcore.py: moto has no AgentCore.

Every request is checked against botocore's own service model for `bedrock-agentcore` (its input
shapes, as the real client checks them before sending), and every answer is built to its output shapes
and checked too, event by event for the invoke stream. Behind it, code really runs: each session is a
local process sandbox (sandbox/local.py), so the AgentCore code path is tested against real executions,
files and errors. What AgentCore itself does beyond its documented shapes (its own limits, its images)
is not imitated."""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, EventStreamError
from botocore.validate import ParamValidator

from chalicelib.config import CodeLimits
from chalicelib.sandbox.local import LocalSandbox, LocalSession

_MODEL = botocore.session.get_session().get_service_model("bedrock-agentcore")


def _check_request(operation: str, params: dict[str, Any]) -> None:
    report = ParamValidator().validate(params, _MODEL.operation_model(operation).input_shape)
    if report.has_errors():
        raise AssertionError(f"{operation}: {report.generate_report()}")


def _check_answer(shape_name: str, value: dict[str, Any]) -> None:
    report = ParamValidator().validate(value, _MODEL.shape_for(shape_name))
    if report.has_errors():
        raise AssertionError(f"{shape_name} answer: {report.generate_report()}")


def _not_found(operation: str, session_id: str) -> ClientError:
    error = {"Code": "ResourceNotFoundException", "Message": f"Session {session_id} not found"}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 404}}, operation)


class StandInAgentCore:
    def __init__(self, root: Path, limits: CodeLimits | None = None) -> None:
        # max_figures 0: AgentCore leaves figures open; sandbox/agentcore.py's snippet saves them
        limits = limits or CodeLimits(cpu_seconds=5, wall_seconds=60, max_figures=0)
        self.sandbox = LocalSandbox(root, limits, "process", 3600)
        self.sessions: dict[str, LocalSession] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self._lock = threading.Lock()

    # --- the client's operations ---

    def start_code_interpreter_session(self, **params: Any) -> dict[str, Any]:
        _check_request("StartCodeInterpreterSession", params)
        self.calls.append(("StartCodeInterpreterSession", params))
        session_id = uuid.uuid4().hex.upper()[:26]
        with self._lock:
            self.sessions[session_id] = self.sandbox.session(session_id)
        self.started.append(params)
        answer = {
            "codeInterpreterIdentifier": params["codeInterpreterIdentifier"],
            "sessionId": session_id,
            "createdAt": datetime.datetime.now(datetime.UTC),
        }
        _check_answer("StartCodeInterpreterSessionResponse", answer)
        return answer

    def stop_code_interpreter_session(self, **params: Any) -> dict[str, Any]:
        _check_request("StopCodeInterpreterSession", params)
        self.calls.append(("StopCodeInterpreterSession", params))
        with self._lock:
            session = self.sessions.pop(params["sessionId"], None)
        if session is None:
            raise _not_found("StopCodeInterpreterSession", params["sessionId"])
        self.stopped.append(params["sessionId"])
        session.terminate()  # ends what runs, as AgentCore's stop does
        threading.Thread(target=session.close, daemon=True).start()
        answer = {
            "codeInterpreterIdentifier": params["codeInterpreterIdentifier"],
            "sessionId": params["sessionId"],
            "lastUpdatedAt": datetime.datetime.now(datetime.UTC),
        }
        _check_answer("StopCodeInterpreterSessionResponse", answer)
        return answer

    def invoke_code_interpreter(self, **params: Any) -> dict[str, Any]:
        _check_request("InvokeCodeInterpreter", params)
        self.calls.append(("InvokeCodeInterpreter", params))
        session = self.sessions.get(params["sessionId"])
        if session is None:
            raise _not_found("InvokeCodeInterpreter", params["sessionId"])
        result = getattr(self, "_" + params["name"])(session, params["arguments"])
        _check_answer("CodeInterpreterResult", result)
        if params["sessionId"] not in self.sessions:  # it ended while the tool ran: the stream says so
            return {"sessionId": params["sessionId"], "stream": self._ended_stream(params["sessionId"])}
        return {"sessionId": params["sessionId"], "stream": iter([{"result": result}])}

    @staticmethod
    def _ended_stream(session_id: str) -> Iterator[dict[str, Any]]:
        # botocore raises an error event of the stream as EventStreamError, its code the member's name
        error = {"Code": "resourceNotFoundException", "Message": f"Session {session_id} not found"}
        raise EventStreamError({"Error": error}, "InvokeCodeInterpreter")
        yield {}  # a generator: the error comes as the stream is read

    def forget(self, session_id: str) -> None:
        """AgentCore ends the session on its own (its lifetime ran out)."""
        with self._lock:
            session = self.sessions.pop(session_id)
        session.terminate()
        threading.Thread(target=session.close, daemon=True).start()

    # --- the tools ---

    def _executeCode(self, session: LocalSession, arguments: dict[str, Any]) -> dict[str, Any]:
        assert arguments["language"] == "python"
        started = datetime.datetime.now()
        execution = session.execute(arguments["code"], threading.Event())
        elapsed = (datetime.datetime.now() - started).total_seconds()
        return {
            "content": [{"type": "text", "text": execution.logs}],
            "structuredContent": {
                "stdout": execution.logs,
                "stderr": "",
                "exitCode": 1 if execution.failed else 0,
                "executionTime": elapsed,
            },
            "isError": execution.failed,
        }

    def _writeFiles(self, session: LocalSession, arguments: dict[str, Any]) -> dict[str, Any]:
        for item in arguments["content"]:
            data = item["blob"] if "blob" in item else item["text"].encode()
            (session.layout.host_data / item["path"]).write_bytes(data)
        written = ", ".join(item["path"] for item in arguments["content"])
        return {"content": [{"type": "text", "text": f"Successfully wrote {written}"}], "isError": False}

    def _readFiles(self, session: LocalSession, arguments: dict[str, Any]) -> dict[str, Any]:
        blocks = []
        for path in arguments["paths"]:
            data = (session.layout.host_data / path).read_bytes()
            uri = f"file:///opt/amazon/genesis1p-tools/var/{path}"
            try:
                resource = {"type": "text", "uri": uri, "mimeType": "text/plain", "text": data.decode()}
            except UnicodeDecodeError:
                resource = {"type": "blob", "uri": uri, "mimeType": "application/octet-stream", "blob": data}
            blocks.append({"type": "resource", "resource": resource})
        return {"content": blocks, "isError": False}
