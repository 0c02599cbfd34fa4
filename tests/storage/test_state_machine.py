"""The Step Functions driver: infra/runs.yaml's definition executed by moto's Step Functions, its Task
invoking the real `advance_run` Lambda handler of app.py against moto's DynamoDB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from chalicelib.domain import assistants, runs, threads
from chalicelib.runs.engine import advance_run
from chalicelib.storage.models import RunRecord, create_tables, thread_key

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "runs.yaml"
PROJECT = "proj_statemachine"


def definition(function_arn: str) -> str:
    machine = yaml.safe_load(TEMPLATE.read_text())["Resources"]["RunStateMachine"]["Properties"]
    return json.dumps(machine["Definition"]).replace("${AdvanceRunFunctionArn}", function_arn)


@pytest.fixture
def step_functions(monkeypatch):
    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):
        create_tables()
        invocations: list[dict] = []

        def invoke(self, function_name, qualifier, body, headers, response_headers):
            from app import advance_run_task

            event = json.loads(body)
            invocations.append(event)
            return json.dumps(advance_run_task(event, None)).encode()

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function = boto3.client("lambda").create_function(
            FunctionName="advance_run",
            Runtime="python3.12",
            Role=role,
            Handler="app.advance_run_task",
            Code={"ZipFile": b"not used by the simple backend"},
        )["FunctionArn"]
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(name="runs", definition=definition(function), roleArn=role)
        yield sfn, machine["stateMachineArn"], invocations


def a_run(body: dict | None = None):
    assistant = assistants.create_assistant(PROJECT, {"model": "offline", **(body or {})})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "hello"}]})
    return runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"]})


def execute(sfn, machine_arn: str, run_key: str) -> dict:
    execution = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps({"run": run_key}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError("the execution did not finish")


def test_the_state_machine_drives_a_run_to_completion(step_functions):
    sfn, machine_arn, invocations = step_functions
    stored = a_run()
    described = execute(sfn, machine_arn, stored.ref.key)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["done"] is True
    assert len(invocations) == 1
    finished = runs.get_run(PROJECT, stored.ref.thread_id, stored.ref.run_id)
    assert finished.status == "completed"
    reply = threads.list_messages(PROJECT, stored.ref.thread_id, runs.ListQuery(order="desc"), None)["data"][0]
    assert reply["role"] == "assistant" and reply["run_id"] == stored.ref.run_id


def test_the_state_machine_waits_and_advances_again_until_the_run_expires(step_functions, monkeypatch):
    sfn, machine_arn, invocations = step_functions
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    assistant = assistants.create_assistant(PROJECT, {"model": "offline", "tools": [tool]})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "look it up"}]})
    stored = runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"], "tool_choice": "required"})
    assert advance_run(stored.ref).done is False
    record = RunRecord.get(thread_key(PROJECT, thread["id"]), stored.ref.run_id)
    assert record.status == "requires_action"
    invoke = LambdaSimpleBackend.invoke

    def first_invocation_sees_expiry_ahead(self, *args, **kwargs):
        # Set just before the first invocation (not before the execution starts, which a busy machine
        # can delay past the expiry): that one waits, and the next one finds the run expired.
        if not invocations:
            record.update(actions=[RunRecord.run.set(dict(record.run, expires_at=int(time.time()) + 3))])
        return invoke(self, *args, **kwargs)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", first_invocation_sees_expiry_ahead)

    described = execute(sfn, machine_arn, stored.ref.key)
    assert described["status"] == "SUCCEEDED"
    assert len(invocations) == 2  # requires action: wait until it expires, then advance again
    assert runs.get_run(PROJECT, thread["id"], stored.ref.run_id).status == "expired"
    step = runs.list_steps(PROJECT, thread["id"], stored.ref.run_id, runs.ListQuery())["data"][0]
    assert step["status"] == "expired" and step["expired_at"] is not None


def test_a_streamed_run_is_left_to_its_stream_for_one_lease_then_taken_over(step_functions, monkeypatch):
    """`stream: true` on AWS: the execution is started with the run, but waits one lease before its first
    step, so the streaming request (which drives its run itself) is the run's one worker; should that
    request die, the state machine finishes the run."""
    import dataclasses

    from chalicelib.config import settings
    from chalicelib.storage import drivers

    sfn, machine_arn, invocations = step_functions
    deployed = dataclasses.replace(
        settings, run_driver="stepfunctions", state_machine_arn=machine_arn, run_lease_seconds=1.5
    )
    monkeypatch.setattr(drivers, "settings", deployed)
    monkeypatch.setattr(runs, "settings", deployed)
    drivers._stepfunctions.cache_clear()
    assistant = assistants.create_assistant(PROJECT, {"model": "offline"})
    thread = threads.create_thread(PROJECT, {"messages": [{"role": "user", "content": "hello"}]})
    started = time.monotonic()
    stored = runs.create_run(PROJECT, thread["id"], {"assistant_id": assistant["id"], "stream": True})
    (execution,) = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {
        "run": stored.ref.key,
        "wait_seconds": 2,
    }
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        if not invocations:
            assert runs.get_run(PROJECT, thread["id"], stored.ref.run_id).status == "queued"
        time.sleep(0.1)
    assert time.monotonic() - started >= 2  # nothing was done before the wait was over
    assert len(invocations) == 1
    assert runs.get_run(PROJECT, thread["id"], stored.ref.run_id).status == "completed"
    drivers._stepfunctions.cache_clear()  # the client belongs to this test's mock


def test_cfn_lint_passes_on_the_run_template():
    import subprocess
    import sys

    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
