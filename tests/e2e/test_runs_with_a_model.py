"""Runs end to end: the official `openai` SDK over HTTP against the local server, whose model provider is
the scripted stand-in (tests/standin_model.py). Each test is one user story, and checks both what the
SDK sees and what Spindle sent to the model."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from chalicelib.domain.ids import is_valid_id
from tests.standin_model import (
    drip,
    length,
    malformed,
    rate_limited,
    server_error,
    slow,
    text,
    tool_call,
    tool_calls,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
LOOKUP = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


@pytest.fixture
def client(model_server):
    """A project of its own for every test (open auth: every token is a project)."""
    return model_server.client(f"sk-runs-{uuid.uuid4().hex}")


def assistant_for(client, model: str, **fields):
    fields.setdefault("instructions", "You are a helpful assistant.")
    return client.beta.assistants.create(model=model, **fields)


def texts(messages) -> list[tuple[str, str]]:
    return [(m.role, m.content[0].text.value) for m in messages]


def test_a_text_reply_completes_the_run_and_is_stored_as_the_assistant_message(client, standin):
    model = standin.script([text("Paris is the capital of France.", prompt_tokens=42, completion_tokens=8)])
    assistant = assistant_for(client, model, instructions="You are a geography tutor.", temperature=0.7, top_p=0.9)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! Ask me about places."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital"}, {"type": "text", "text": "of France?"}],
            },
        ]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_instructions="Answer in one sentence.",
        temperature=0.2,
        max_completion_tokens=300,
    )

    assert is_valid_id("run", run.id)
    assert run.status == "completed"
    assert run.thread_id == thread.id and run.assistant_id == assistant.id and run.model == model
    assert run.instructions == "You are a geography tutor.\n\nAnswer in one sentence."
    assert run.usage is not None
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (42, 8, 50)
    assert run.started_at is not None and run.completed_at is not None
    assert run.required_action is None and run.last_error is None and run.expires_at is None
    assert (run.temperature, run.top_p, run.max_completion_tokens) == (0.2, 0.9, 300)

    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.role == "assistant"
    assert reply.content[0].text.value == "Paris is the capital of France."
    assert reply.assistant_id == assistant.id and reply.run_id == run.id
    assert reply.status == "completed"
    newest_first = client.beta.threads.messages.list(thread.id).data
    assert [m.id for m in newest_first][0] == reply.id and len(newest_first) == 4

    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.message_creation.message_id == reply.id
    assert step.usage is not None and (step.usage.prompt_tokens, step.usage.completion_tokens) == (42, 8)
    assert step.run_id == run.id and step.assistant_id == assistant.id

    [sent] = standin.requests(model)
    assert sent["model"] == model
    assert sent["messages"] == [
        {"role": "system", "content": "You are a geography tutor.\n\nAnswer in one sentence."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! Ask me about places."},
        {"role": "user", "content": "What is the capital\n\nof France?"},
    ]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.9, 300)
    assert not {"tools", "tool_choice", "parallel_tool_calls", "response_format"} & set(sent)
    # Spindle always streams from the model, so that clients can be replayed every delta.
    assert (sent["stream"], sent["stream_options"]) == (True, {"include_usage": True})
    assert standin.request_headers(model)[0]["authorization"] == "Bearer test"


def test_one_tool_call_waits_for_its_output_then_the_model_sees_it(client, standin):
    model = standin.script(
        [
            tool_call(
                "get_weather", '{"city": "Paris"}', call_id="call_weather_1", prompt_tokens=30, completion_tokens=9
            ),
            text("It is sunny in Paris.", prompt_tokens=50, completion_tokens=6),
        ]
    )
    assistant = assistant_for(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "requires_action"
    assert run.usage is None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.id == "call_weather_1" and call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []
    [pending] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert pending.type == "tool_calls" and pending.status == "in_progress"
    assert pending.step_details.tool_calls[0].function.output is None

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 22 C"}]
    )

    assert run.status == "completed"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (80, 15, 95)
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "It is sunny in Paris."

    first, second = standin.requests(model)
    assert first["tools"] == [WEATHER]
    assert first["tool_choice"] == "auto" and first["parallel_tool_calls"] is True
    assert first["messages"][-1] == {"role": "user", "content": "Weather in Paris?"}
    assert second["messages"][:-2] == first["messages"]
    assert second["messages"][-2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_weather_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_weather_1", "content": "sunny, 22 C"},
    ]

    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    tool_step = client.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread.id, run_id=run.id)
    assert tool_step.id == pending.id and tool_step.status == "completed" and tool_step.completed_at is not None
    [recorded] = tool_step.step_details.tool_calls
    assert (recorded.id, recorded.function.name, recorded.function.output) == (
        "call_weather_1",
        "get_weather",
        "sunny, 22 C",
    )
    assert (tool_step.usage.prompt_tokens, tool_step.usage.completion_tokens) == (30, 9)
    assert steps[1].step_details.message_creation.message_id == reply.id


def test_parallel_calls_get_distinct_ids_and_need_every_output(client, standin):
    model = standin.script(
        [
            tool_calls(
                ("call_dup", "lookup", '{"q": "a"}'),
                ("call_dup", "lookup", '{"q": "b"}'),
                (None, "lookup", '{"q": "c"}'),
            ),
            text("Found a, b and c."),
        ]
    )
    assistant = assistant_for(client, model, tools=[LOOKUP])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Look up a, b and c."}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.arguments for c in calls] == ['{"q": "a"}', '{"q": "b"}', '{"q": "c"}']
    ids = [c.id for c in calls]
    assert len(set(ids)) == 3 and all(ids)
    assert ids[0] == "call_dup"

    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": ids[0], "output": "A"}, {"tool_call_id": ids[1], "output": "B"}],
        )
    assert refused.value.param == "tool_outputs"
    still = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert still.status == "requires_action"
    assert [c.id for c in still.required_action.submit_tool_outputs.tool_calls] == ids
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.status == "in_progress"
    assert [c.function.output for c in step.step_details.tool_calls] == [None, None, None]
    assert len(standin.requests(model)) == 1

    outputs = [{"tool_call_id": call_id, "output": output} for call_id, output in zip(ids, "ABC", strict=True)]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs
    )

    assert run.status == "completed"
    second = standin.requests(model)[1]
    assert [c["id"] for c in second["messages"][-4]["tool_calls"]] == ids
    assert second["messages"][-3:] == [
        {"role": "tool", "tool_call_id": call_id, "content": output} for call_id, output in zip(ids, "ABC", strict=True)
    ]


def test_create_thread_and_run_poll(client, standin):
    model = standin.script([text("Hi Ada.")])
    assistant = assistant_for(client, model, instructions="Greet people by name.")

    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "I am Ada."}], "metadata": {"user": "ada"}},
        metadata={"purpose": "greeting"},
    )

    assert run.status == "completed" and run.metadata == {"purpose": "greeting"}
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"user": "ada"}
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    assert texts(messages) == [("user", "I am Ada."), ("assistant", "Hi Ada.")]
    assert messages[1].run_id == run.id
    [sent] = standin.requests(model)
    assert sent["messages"] == [
        {"role": "system", "content": "Greet people by name."},
        {"role": "user", "content": "I am Ada."},
    ]


def test_a_rate_limited_model_call_is_retried(client, standin):
    model = standin.script([rate_limited(), text("Made it.")])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "completed", run.last_error
    assert len(standin.requests(model)) == 2
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "Made it."


@pytest.mark.parametrize(
    ("step", "code", "attempts"),
    [
        pytest.param(server_error(), "server_error", 3, id="persistent-500"),
        pytest.param(rate_limited(), "rate_limit_exceeded", 3, id="persistent-429"),
        pytest.param(malformed("invalid_json"), "server_error", 1, id="invalid-json"),
        pytest.param(malformed("no_choices"), "server_error", 1, id="no-choices"),
    ],
)
def test_a_failing_model_fails_the_run_with_the_openai_error_code(client, standin, step, code, attempts):
    model = standin.script([step])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == code and run.last_error.message
    assert run.failed_at is not None and run.completed_at is None
    assert len(standin.requests(model)) == attempts  # SPINDLE_LLM_MAX_RETRIES=2 retries 429 and 5xx
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []
    # The thread is free again.
    client.beta.threads.messages.create(thread.id, role="user", content="Still there?")


def test_a_model_slower_than_the_timeout_fails_the_run(client, standin):
    model = standin.script([slow(6, text("Too late."))])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert len(standin.requests(model)) == 3  # the timeout is retried like any transient failure
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []


def test_a_reply_cut_at_the_token_limit_makes_the_run_incomplete(client, standin):
    model = standin.script([length("The history of Rome begins", prompt_tokens=12, completion_tokens=5)])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me all of Roman history."}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )

    assert run.status == "incomplete"
    assert run.incomplete_details is not None and run.incomplete_details.reason == "max_completion_tokens"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (12, 5)
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "The history of Rome begins"
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"
    assert standin.requests(model)[0]["max_tokens"] == 256


def test_cancelling_a_run_while_the_model_thinks(client, standin):
    model = standin.script([slow(2, text("You will never see this."))])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Think hard."}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    standin.wait_for_requests(model, 1)  # the model call is under way

    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"

    run = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert run.status == "cancelled"
    assert run.cancelled_at is not None and run.completed_at is None
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []
    assert texts(client.beta.threads.messages.list(thread.id).data) == [("user", "Think hard.")]
    assert client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data == []
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    client.beta.threads.messages.create(thread.id, role="user", content="Never mind.")


def test_a_cancel_while_the_model_is_silent_ends_the_run_without_waiting_for_it(client, standin):
    """A reasoning model thinks before its first token: the stop button must not wait for it. The run
    ends cancelled while the model (silent for 4 s) has sent nothing."""
    model = standin.script([slow(4, text("Too late."))])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Think very hard."}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    standin.wait_for_requests(model, 1)  # the model call is under way, and silent

    asked = time.monotonic()
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    ended = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
    took = time.monotonic() - asked

    print(f"run cancelled {took:.3f} s after the cancel was asked, the model still silent")
    assert ended.status == "cancelled"
    assert standin.chunks_sent.get(model, 0) == 0  # it ended before the model said anything
    assert took < 3  # not the model's 4 s: about 0.3 s (one look by the watcher, one by the worker)
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []


def test_a_thread_takes_one_run_at_a_time(client, standin):
    model = standin.script([tool_call("get_weather", '{"city": "Oslo"}'), text("Cold.")])
    assistant = assistant_for(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"

    with pytest.raises(openai.BadRequestError) as second_run:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert second_run.value.body["message"] == f"Thread {thread.id} already has an active run {run.id}."
    with pytest.raises(openai.BadRequestError) as new_message:
        client.beta.threads.messages.create(thread.id, role="user", content="Hurry up.")
    assert run.id in new_message.value.body["message"]
    assert [r.id for r in client.beta.threads.runs.list(thread.id).data] == [run.id]

    [call] = run.required_action.submit_tool_outputs.tool_calls
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "-5 C"}]
    )
    assert run.status == "completed"

    client.beta.threads.messages.create(thread.id, role="user", content="And tomorrow?")
    again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert again.status == "completed"  # the script repeats its last step
    assert texts(client.beta.threads.messages.list(thread.id, order="asc").data) == [
        ("user", "Weather in Oslo?"),
        ("assistant", "Cold."),
        ("user", "And tomorrow?"),
        ("assistant", "Cold."),
    ]


def test_reading_and_updating_finished_runs(client, standin, monkeypatch):
    model = standin.script([text("Done.")])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, metadata={"a": "1"})
    assert run.status == "completed"

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"poll slept {seconds} s on a finished run")

    monkeypatch.setattr(client.beta.threads.runs, "_sleep", no_sleep)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id) == run

    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id) == run
    assert [r.id for r in client.beta.threads.runs.list(thread.id).data] == [run.id]
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"a": "2", "b": "x"})
    assert updated.metadata == {"a": "2", "b": "x"} and updated.status == "completed"
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"a": "2", "b": "x"}

    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread.id, run_id=run.id) == step
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve("step_" + "0" * 23, thread_id=thread.id, run_id=run.id)


def test_truncation_tool_choice_response_format_and_parallel_calls_reach_the_model(client, standin):
    model = standin.script([text('{"city": "Paris"}')])
    assistant = assistant_for(client, model, instructions="Reply in JSON.", tools=[WEATHER, LOOKUP])
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
            {"role": "user", "content": "four"},
        ]
    )

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        response_format={"type": "json_object"},
        parallel_tool_calls=False,
    )

    assert run.status == "completed"
    assert run.truncation_strategy.type == "last_messages" and run.truncation_strategy.last_messages == 2
    assert run.parallel_tool_calls is False
    [sent] = standin.requests(model)
    assert sent["messages"] == [
        {"role": "system", "content": "Reply in JSON."},
        {"role": "user", "content": "three"},
        {"role": "user", "content": "four"},
    ]
    assert sent["tools"] == [WEATHER, LOOKUP]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["parallel_tool_calls"] is False


def test_the_runs_of_a_deleted_thread_are_gone_with_it(client, standin):
    model = standin.script([tool_call("get_weather", "{}"), text("Nobody reads this.")])
    assistant = assistant_for(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"

    client.beta.threads.delete(thread.id)

    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.list(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_standin_1", "output": "x"}]
        )
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"k": "v"})
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    assert len(standin.requests(model)) == 1


def test_cancel_while_the_model_writes_stops_the_model_call_and_keeps_the_text_so_far(model_server, standin):
    """The stop button of a chat UI: a cancel stops the model mid-reply (it would talk for 20 s), the run
    ends cancelled, and what it had written stays as an incomplete message (reason run_cancelled)."""
    client = model_server.client("sk-cancel-mid-reply")
    model = standin.script([drip([f"word{number} " for number in range(200)], gap_seconds=0.1)])
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me everything."}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    standin.wait_for_chunks(model, 5)

    asked = time.monotonic()
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    hangup = standin.wait_for_hangup(model)
    ended = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)

    assert hangup is not None and hangup.chunks_sent < 200  # the model call was stopped, not waited out
    print(f"model call stopped {hangup.at - asked:.3f} s after the cancel was asked")
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    (message,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    kept = message.content[0].text.value
    assert kept.startswith("word0 word1 word2 word3 word4 ")
    assert "".join(f"word{number} " for number in range(200)).startswith(kept)
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.status == "cancelled"
    assert step.step_details.message_creation.message_id == message.id
    assert client.beta.threads.messages.create(thread.id, role="user", content="the thread is free again")
    assert len(standin.requests(model)) == 1
