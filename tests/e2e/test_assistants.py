"""Assistants through the official SDK, and runs on the built-in offline model (no provider configured)."""

from __future__ import annotations

import time

import openai
import pytest

from chalicelib.domain.ids import is_valid_id

FUNCTION = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_an_assistant_round_trips(client):
    data = client.files.create(file=("data.csv", b"x,y\n1,2\n"), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        name="Math Tutor",
        description="Answers math questions",
        instructions="You are a personal math tutor.",
        tools=[{"type": "code_interpreter"}, FUNCTION],
        tool_resources={"code_interpreter": {"file_ids": [data.id]}},
        metadata={"team": "edu"},
        temperature=0.5,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    assert is_valid_id("assistant", assistant.id)
    assert assistant.object == "assistant"
    assert assistant.created_at <= int(time.time()) + 1
    assert (assistant.name, assistant.model, assistant.temperature, assistant.top_p) == (
        "Math Tutor",
        "gpt-4o",
        0.5,
        0.9,
    )
    assert [tool.type for tool in assistant.tools] == ["code_interpreter", "function"]
    assert assistant.tools[1].function.name == "get_weather"
    assert assistant.tool_resources.code_interpreter.file_ids == [data.id]
    assert assistant.response_format.type == "json_object"
    assert client.beta.assistants.retrieve(assistant.id) == assistant

    updated = client.beta.assistants.update(assistant.id, name="Tutor", instructions=None, metadata={"v": "2"})
    assert (updated.name, updated.instructions, updated.metadata) == ("Tutor", None, {"v": "2"})
    assert updated.model == "gpt-4o" and updated.tools == assistant.tools

    deleted = client.beta.assistants.delete(assistant.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (assistant.id, "assistant.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(assistant.id)


def test_defaults_match_the_official_object(client):
    assistant = client.beta.assistants.with_raw_response.create(model="gpt-4o-mini").http_response.json()
    assert assistant["name"] is None and assistant["description"] is None and assistant["instructions"] is None
    assert assistant["tools"] == [] and assistant["metadata"] == {} and assistant["tool_resources"] == {}
    assert (assistant["temperature"], assistant["top_p"], assistant["response_format"]) == (1.0, 1.0, "auto")


def test_assistants_list_and_paginate(server):
    tenant = server.client(f"sk-assistants-{time.time_ns()}")
    made = [tenant.beta.assistants.create(model="m", name=str(n)).id for n in range(5)]
    assert [a.id for a in tenant.beta.assistants.list(limit=2)] == list(reversed(made))
    assert [a.id for a in tenant.beta.assistants.list(order="asc", limit=3)] == made


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "model"),
        ({"model": "m", "name": "x" * 257}, "name"),
        ({"model": "m", "description": "x" * 513}, "description"),
        ({"model": "m", "temperature": 2.5}, "temperature"),
        ({"model": "m", "top_p": -0.1}, "top_p"),
        ({"model": "m", "tools": [{"type": "code_interpreter"}] * 129}, "tools"),
        ({"model": "m", "tools": [{"type": "browser"}]}, "tools[0].type"),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k"),
        ({"model": "m", "response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": "m", "unknown": True}, "unknown"),
    ],
)
def test_assistant_limits_are_enforced(client, body, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/assistants", body=body, cast_to=object)
    assert refused.value.param == param


def test_the_documented_example_runs_on_the_offline_model(client):
    assistant = client.beta.assistants.create(name="Math Tutor", instructions="Be brief.", model="gpt-4o")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="I need to solve 3x + 11 = 14.")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens > 0
    assert run.started_at is not None and run.completed_at is not None and run.expires_at is None
    reply = client.beta.threads.messages.list(thread.id).data[0]
    assert reply.role == "assistant"
    assert reply.content[0].text.value == "You said: I need to solve 3x + 11 = 14."
    assert (reply.assistant_id, reply.run_id) == (assistant.id, run.id)


def test_run_responses_hint_the_poll_interval_while_live(client):
    assistant = client.beta.assistants.create(model="offline")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    created = client.beta.threads.runs.with_raw_response.create(thread_id=thread.id, assistant_id=assistant.id)
    assert created.headers["openai-poll-after-ms"] == "100"
    run = client.beta.threads.runs.poll(created.parse().id, thread_id=thread.id)
    finished = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert "openai-poll-after-ms" not in finished.headers


def test_runs_refuse_what_the_official_api_refuses(client):
    assistant = client.beta.assistants.create(model="offline", tools=[FUNCTION])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather in Paris?"}])
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_00VbbfTJX3DJFBVSmcDNpx3")
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, tool_choice={"type": "function", "function": {"name": "x"}}
        )
    assert refused.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, max_prompt_tokens=10)
    assert refused.value.param == "max_prompt_tokens"

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required"
    )
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as busy:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert busy.value.message == f"Error code: 400 - Thread {thread.id} already has an active run {run.id}."
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(thread.id, role="user", content="hurry up")
    with pytest.raises(openai.BadRequestError) as missing:
        client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=thread.id, tool_outputs=[])
    assert missing.value.param == "tool_outputs"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_unknown", "output": "x"}]
        )
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"

    cancelled = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelling"
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "cancelled"
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert (step.type, step.status) == ("tool_calls", "cancelled")
    with pytest.raises(openai.BadRequestError) as done:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert "cancelled" in done.value.message
    client.beta.threads.messages.create(thread.id, role="user", content="the thread is free again")
    assert client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id).status == (
        "completed"
    )


def test_runs_and_steps_list_retrieve_and_update(client):
    assistant = client.beta.assistants.create(model="offline")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    first = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    second = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, additional_messages=[{"role": "user", "content": "two"}]
    )
    assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [second.id, first.id]
    updated = client.beta.threads.runs.update(first.id, thread_id=thread.id, metadata={"k": "v"})
    assert updated.metadata == {"k": "v"} and updated.status == "completed"
    steps = client.beta.threads.runs.steps.list(second.id, thread_id=thread.id).data
    assert [s.type for s in steps] == ["message_creation"]
    step = client.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread.id, run_id=second.id)
    assert step == steps[0]
    reply = client.beta.threads.messages.retrieve(step.step_details.message_creation.message_id, thread_id=thread.id)
    assert reply.content[0].text.value == "You said: two"
    by_run = client.beta.threads.messages.list(thread.id, run_id=second.id).data
    assert [m.id for m in by_run] == [reply.id]


def test_run_inputs_that_cannot_fit_a_transaction_or_an_item_are_400(client):
    assistant = client.beta.assistants.create(model="offline", tools=[FUNCTION])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    too_many = [{"role": "user", "content": str(n)} for n in range(91)]
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, additional_messages=too_many)
    assert refused.value.param == "additional_messages"
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.create_and_run(assistant_id=assistant.id, thread={"messages": too_many})
    assert refused.value.param == "thread.messages"
    assert [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id)] == ["weather?"]

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required"
    )
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    with pytest.raises(openai.BadRequestError) as too_large:
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x" * 300_000}]
        )
    assert too_large.value.param == "tool_outputs"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
