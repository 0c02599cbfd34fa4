"""code_interpreter on AWS: the AgentCore sandbox (chalicelib/sandbox/agentcore.py) against the
stand-in client (tests/standin_agentcore.py: botocore's own request and response shapes, real code
behind them), with the thread's session kept on its DynamoDB record (moto), and a whole run through
the engine on it."""

from __future__ import annotations

import json
import threading
import time

import pytest

from chalicelib import sandbox as sandboxes
from chalicelib.config import CodeLimits
from chalicelib.domain import assistants, files, runs, threads
from chalicelib.runs import engine
from chalicelib.runs.engine import advance_run
from chalicelib.runs.providers.base import Finish, TextDelta, ToolCallDelta, Usage
from chalicelib.runs.providers.offline import OfflineProvider
from chalicelib.sandbox.agentcore import AgentCoreSandbox
from chalicelib.storage import runs as run_store
from chalicelib.storage import threads as thread_store
from tests.standin_agentcore import StandInAgentCore

PROJECT = "proj_agentcore"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def agentcore(tmp_path):
    standin = StandInAgentCore(tmp_path / "agentcore")
    yield standin
    standin.sandbox.close()


@pytest.fixture
def thread_id(aws) -> str:
    return threads.create_thread(PROJECT, {})["id"]


def aws_sandbox(agentcore, **options) -> AgentCoreSandbox:
    return AgentCoreSandbox(client=agentcore, interpreter_id="aws.codeinterpreter.v1", **options)


def test_a_threads_session_is_kept_on_its_record_and_resumed_by_the_next_lambda(agentcore, thread_id):
    first = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    first.put_files({"file-1": ("data.csv", b"a,b\n1,2\n")})
    assert first.execute(
        "total = sum(int(x) for x in open('data.csv').read().split()[1].split(','))", threading.Event()
    )
    kept = thread_store.get_code_session(PROJECT, thread_id)
    assert kept["inputs"] == ["file-1"] and kept["session_id"] in agentcore.sessions
    # another process (a new Lambda): the same session, its variables, its files
    again = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    assert again.input_ids == {"file-1"}
    result = again.execute("print(total)", threading.Event())
    assert (result.logs, result.failed) == ("3", False)
    assert len(agentcore.started) == 1
    started = agentcore.started[0]
    assert started["codeInterpreterIdentifier"] == "aws.codeinterpreter.v1" and started["sessionTimeoutSeconds"] == 3600


def test_written_files_and_open_figures_come_back(agentcore, thread_id):
    session = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    code = (
        "import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\n"
        "n = open('out.csv', 'w').write('x\\n1\\n')\nprint('done')"
    )
    result = session.execute(code, threading.Event())
    assert result.logs == "done"
    assert [(f.path, f.content) for f in result.files] == [("out.csv", b"x\n1\n")]
    assert len(result.figures) == 1 and result.figures[0].startswith(PNG)
    assert session.execute("print('again')", threading.Event()).files == ()  # nothing new: nothing read


def test_an_error_is_reported_in_the_logs(agentcore, thread_id):
    result = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}").execute("1 / 0", threading.Event())
    assert result.failed and "ZeroDivisionError" in result.logs


def test_a_cancel_stops_the_session_and_the_next_execution_starts_a_new_one(agentcore, thread_id):
    session = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    session.execute("kept = 1", threading.Event())
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    result = session.execute("import time\nwhile True:\n    time.sleep(0.05)", stop)
    assert result.failed and "cancelled" in result.logs and time.monotonic() - started < 10
    assert len(agentcore.stopped) == 1 and thread_store.get_code_session(PROJECT, thread_id) is None
    fresh = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    assert fresh.execute("print('kept' in globals())", threading.Event()).logs == "False"
    assert len(agentcore.started) == 2


def test_the_wall_clock_limit_stops_the_session(agentcore, thread_id):
    limits = CodeLimits(wall_seconds=1)
    session = aws_sandbox(agentcore, limits=limits).session(f"{PROJECT}/{thread_id}")
    result = session.execute("import time\ntime.sleep(30)", threading.Event())
    assert result.failed and "time limit" in result.logs and len(agentcore.stopped) == 1


def test_a_session_agentcore_ended_is_replaced_and_its_files_put_in_again(agentcore, thread_id):
    inputs = {"file-1": ("a.txt", lambda: b"alpha")}
    session = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    assert session.execute("print(2)", threading.Event(), inputs).logs == "2"
    agentcore.forget(thread_store.get_code_session(PROJECT, thread_id)["session_id"])
    resumed = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    assert resumed.input_ids == {"file-1"}  # as the record says: AgentCore has not said otherwise yet
    # a new session, transparently, with the user's files put in again
    assert resumed.execute("print(open('a.txt').read())", threading.Event(), inputs).logs == "alpha"
    assert len(agentcore.started) == 2


def test_a_session_that_ends_while_code_runs_is_reported_by_the_stream_and_replaced(agentcore, thread_id):
    """botocore raises an error event of the stream (resourceNotFoundException, camelCase) as
    EventStreamError while the stream is read: the session is known lost, and the code runs again in a
    new one."""
    session = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    session.execute("print(0)", threading.Event())
    first = thread_store.get_code_session(PROJECT, thread_id)["session_id"]
    threading.Timer(0.5, agentcore.forget, args=[first]).start()
    result = session.execute("import time\ntime.sleep(1.5)\nprint('done')", threading.Event())
    assert result.logs == "done" and len(agentcore.started) == 2


def test_an_idle_session_is_stopped_and_not_resumed(agentcore, thread_id):
    aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}").execute("x = 1", threading.Event())
    kept = thread_store.get_code_session(PROJECT, thread_id)
    thread_store.set_code_session(PROJECT, thread_id, {**kept, "last_used": time.time() - 7200})
    later = aws_sandbox(agentcore).session(f"{PROJECT}/{thread_id}")
    assert agentcore.stopped == [kept["session_id"]]
    assert later.execute("print('x' in globals())", threading.Event()).logs == "False"


def test_a_run_uses_code_interpreter_on_agentcore(agentcore, aws, monkeypatch):
    monkeypatch.setattr(sandboxes, "_configured", aws_sandbox(agentcore))
    upload = files.create_file(PROJECT, {"purpose": "assistants"}, "nums.csv", b"n\n1\n2\n3\n")
    assistant = assistants.create_assistant(
        PROJECT,
        {"model": "offline", "tools": [{"type": "code_interpreter"}]},
    )
    thread = threads.create_thread(
        PROJECT,
        {
            "messages": [{"role": "user", "content": "sum it"}],
            "tool_resources": {"code_interpreter": {"file_ids": [upload["id"]]}},
        },
    )
    stored = runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})
    code = "import csv\ntotal = sum(int(r['n']) for r in csv.DictReader(open('nums.csv')))\nprint(total)"

    def model(request):
        if request.messages[-1].role == "tool":
            yield TextDelta("The total is 6.")
        else:
            assert "nums.csv" in request.system
            yield ToolCallDelta(0, id="call_1", name="code_interpreter", arguments=json.dumps({"code": code}))
        yield Finish("stop" if request.messages[-1].role == "tool" else "tool_calls")
        yield Usage(10, 5)

    monkeypatch.setattr(engine, "provider_for", lambda name: OfflineProvider(model))
    for _ in range(5):
        if advance_run(stored.ref).done:
            break
    assert run_store.get_run(stored.ref).status == "completed"
    (tool_step, _) = run_store.all_steps(stored.ref)
    (call,) = tool_step["step_details"]["tool_calls"]
    assert call["code_interpreter"]["outputs"] == [{"type": "logs", "logs": "6"}]
    writes = [params for name, params in agentcore.calls if params.get("name") == "writeFiles"]
    assert [item["path"] for item in writes[0]["arguments"]["content"]] == ["nums.csv"]


def test_a_cancel_while_code_runs_keeps_its_step_cancelled(agentcore, aws, monkeypatch):
    monkeypatch.setattr(sandboxes, "_configured", aws_sandbox(agentcore))
    assistant = assistants.create_assistant(PROJECT, {"model": "offline", "tools": [{"type": "code_interpreter"}]})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "loop"}]})
    stored = runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})
    code = "import time\nwhile True:\n    time.sleep(0.05)"

    def model(request):
        yield TextDelta("Looping now.")
        yield ToolCallDelta(0, id="call_1", name="code_interpreter", arguments=json.dumps({"code": code}))
        yield Finish("tool_calls")
        yield Usage(10, 5)

    monkeypatch.setattr(engine, "provider_for", lambda name: OfflineProvider(model))
    worker = threading.Thread(target=advance_run, args=(stored.ref,), daemon=True)
    worker.start()
    while not any(name == "InvokeCodeInterpreter" and p["name"] == "executeCode" for name, p in agentcore.calls[1:]):
        time.sleep(0.05)
    time.sleep(0.5)
    runs.cancel_run(PROJECT, thread["id"], stored.ref.run_id)
    worker.join(30)
    ended = run_store.get_run(stored.ref)
    assert ended.status == "cancelled", ended.run["last_error"]
    message_step, tool_step = run_store.all_steps(stored.ref)
    assert message_step["status"] == "completed" and tool_step["status"] == "cancelled"
    (call,) = tool_step["step_details"]["tool_calls"]
    assert call["code_interpreter"]["input"] == code and "cancelled" in call["code_interpreter"]["outputs"][0]["logs"]
    logged = [item["event"] for item in run_store.events_after(stored.ref, 0)]
    assert logged[-2:] == ["thread.run.step.cancelled", "thread.run.cancelled"]
