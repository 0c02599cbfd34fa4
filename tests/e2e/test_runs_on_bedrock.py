"""Runs on Amazon Bedrock end to end: the official `openai` SDK over HTTP against the local server, which
routes `anthropic.` models to Bedrock (the ConverseStream stand-in, tests/standin_bedrock.py, spoken to
by the real boto3) and every other model to the OpenAI-compatible stand-in. The scenarios are those
tests/e2e/test_runs_with_a_model.py runs on the OpenAI-compatible provider; each checks what the SDK sees
and what Spindle sent to Bedrock."""

from __future__ import annotations

import json
import uuid

import pytest

from tests import standin_model
from tests.event_collector import Collector
from tests.standin_bedrock import (
    broken_off,
    max_tokens,
    split_text,
    stream_exception,
    text,
    throttled,
    tool_use,
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


def tool_spec(tool: dict) -> dict:
    function = tool["function"]
    spec = {"name": function["name"], "inputSchema": {"json": function["parameters"]}}
    if "description" in function:
        spec["description"] = function["description"]
    return {"toolSpec": spec}


@pytest.fixture
def client(bedrock_server):
    """A project of its own for every test (open auth: every token is a project)."""
    return bedrock_server.client(f"sk-bedrock-{uuid.uuid4().hex}")


def assistant_for(client, model: str, **fields):
    fields.setdefault("instructions", "You are a helpful assistant.")
    return client.beta.assistants.create(model=model, **fields)


def test_a_text_reply_completes_the_run_and_is_stored_as_the_assistant_message(client, standin_bedrock):
    model = standin_bedrock.script([text("Paris is the capital of France.", input_tokens=42, output_tokens=8)])
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

    assert run.status == "completed", run.last_error
    assert run.model == model
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (42, 8, 50)
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.role == "assistant" and reply.status == "completed"
    assert reply.content[0].text.value == "Paris is the capital of France."
    [step] = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert step.type == "message_creation" and step.step_details.message_creation.message_id == reply.id
    assert (step.usage.prompt_tokens, step.usage.completion_tokens) == (42, 8)

    [sent] = standin_bedrock.requests(model)
    assert sent == {
        "system": [{"text": "You are a geography tutor.\n\nAnswer in one sentence."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello! Ask me about places."}]},
            {"role": "user", "content": [{"text": "What is the capital"}, {"text": "of France?"}]},
        ],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "topP": 0.9},
    }
    # SigV4-signed for SPINDLE_BEDROCK_REGION, with the credentials of the server's environment
    assert "/us-west-2/bedrock/aws4_request" in standin_bedrock.request_headers(model)[0]["authorization"]


def test_a_streamed_reply_replays_bedrocks_deltas_and_they_make_the_stored_message(client, standin_bedrock):
    answer = "It is sunny in Paris, 21 degrees."
    model = standin_bedrock.script([text(answer, input_tokens=20, output_tokens=9)])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    handler = Collector()

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
        final_run = s.get_final_run()

    assert final_run.status == "completed"
    assert (final_run.usage.prompt_tokens, final_run.usage.completion_tokens) == (20, 9)
    assert handler.text_deltas == split_text(answer)  # one message delta per Bedrock text delta
    assert handler.names[-3:] == ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]
    [stored] = client.beta.threads.messages.list(thread.id, run_id=final_run.id).data
    assert stored.content[0].text.value == "".join(handler.text_deltas) == answer


def test_one_tool_call_waits_for_its_output_then_bedrock_sees_the_tool_use_and_its_result(client, standin_bedrock):
    model = standin_bedrock.script(
        [
            tool_use(("tooluse_weather_1", "get_weather", '{"city": "Paris"}'), input_tokens=30, output_tokens=9),
            text("It is sunny in Paris.", input_tokens=50, output_tokens=6),
        ]
    )
    assistant = assistant_for(client, model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "requires_action", run.last_error
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.id == "tooluse_weather_1" and call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert client.beta.threads.messages.list(thread.id, run_id=run.id).data == []

    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 22 C"}]
    )

    assert run.status == "completed", run.last_error
    assert (run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens) == (80, 15, 95)
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "It is sunny in Paris."
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].function.output == "sunny, 22 C"
    assert (steps[0].usage.prompt_tokens, steps[0].usage.completion_tokens) == (30, 9)

    first, second = standin_bedrock.requests(model)
    assert first["toolConfig"] == {"tools": [tool_spec(WEATHER)], "toolChoice": {"auto": {}}}
    assert first["messages"] == [{"role": "user", "content": [{"text": "Weather in Paris?"}]}]
    assert second["toolConfig"] == first["toolConfig"]
    assert second["messages"] == [
        *first["messages"],
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "tooluse_weather_1", "name": "get_weather", "input": {"city": "Paris"}}}
            ],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "tooluse_weather_1", "content": [{"text": "sunny, 22 C"}]}}],
        },
    ]


def test_parallel_calls_stream_their_arguments_and_their_results_share_one_user_turn(client, standin_bedrock):
    calls = [
        ("tooluse_a", "lookup", '{"q": "a"}'),
        ("tooluse_b", "lookup", '{"q": "b"}'),
        ("tooluse_c", "lookup", "{}"),
    ]
    model = standin_bedrock.script([tool_use(*calls, text_before="Looking them up."), text("Found a, b and c.")])
    assistant = assistant_for(client, model, tools=[LOOKUP])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Look up a, b and c."}])
    handler = Collector()

    events = list(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True))

    run = events[-1].data
    assert events[-1].event == "thread.run.requires_action"
    tool_calls = run.required_action.submit_tool_outputs.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in tool_calls] == calls
    streamed = [
        call.function.arguments
        for e in events
        if e.event == "thread.run.step.delta" and e.data.delta.step_details.type == "tool_calls"
        for call in e.data.delta.step_details.tool_calls
        if call.function and call.function.arguments
    ]
    assert "".join(streamed) == "".join(arguments for _, _, arguments in calls)

    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": c.id, "output": c.id[-1].upper()} for c in tool_calls],
        event_handler=handler,
    ) as s:
        s.until_done()
        assert s.get_final_run().status == "completed"
    assert "".join(handler.text_deltas) == "Found a, b and c."

    second = standin_bedrock.requests(model)[1]
    # The text that came with the calls ("Looking them up.") is a message of its own in the thread, so
    # the replayed assistant turn holds it, then the calls.
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [
            {"text": "Looking them up."},
            *({"toolUse": {"toolUseId": i, "name": n, "input": json.loads(a)}} for i, n, a in calls),
        ],
    }
    (said,) = client.beta.threads.messages.list(thread.id, run_id=run.id, order="asc").data[:1]
    assert said.content[0].text.value == "Looking them up." and said.status == "completed"
    assert second["messages"][2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": i, "content": [{"text": i[-1].upper()}]}} for i, _, _ in calls],
    }
    assert len(second["messages"]) == 3


def test_a_reply_cut_at_max_tokens_makes_the_run_incomplete(client, standin_bedrock):
    model = standin_bedrock.script([max_tokens("The history of Rome begins", input_tokens=12, output_tokens=5)])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me all of Roman history."}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=256
    )

    assert run.status == "incomplete", run.last_error
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (12, 5)
    [reply] = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "The history of Rome begins"
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_tokens"
    assert standin_bedrock.requests(model)[0]["inferenceConfig"]["maxTokens"] == 256


@pytest.mark.parametrize(
    ("step", "code", "message", "attempts"),
    [
        pytest.param(
            stream_exception("modelStreamErrorException", "The model stopped."),
            "server_error",
            "Amazon Bedrock failed (modelStreamErrorException): The model stopped.",
            1,
            id="in-stream-exception",
        ),
        pytest.param(
            stream_exception("throttlingException", "Slow down."),
            "rate_limit_exceeded",
            "Amazon Bedrock is throttling requests: Slow down.",
            1,
            id="in-stream-throttling",
        ),
        pytest.param(
            throttled(),
            "rate_limit_exceeded",
            "Amazon Bedrock is throttling requests: Too many requests, please wait before trying again.",
            3,
            id="throttled-before-the-stream",
        ),
        pytest.param(broken_off("This reply never"), "server_error", "Amazon Bedrock's stream broke", 1, id="broken"),
    ],
)
def test_a_failing_bedrock_fails_the_run_and_frees_the_thread(
    client, standin_bedrock, step, code, message, attempts, request
):
    model = standin_bedrock.script([step])
    assistant = assistant_for(client, model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])

    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)

    assert run.status == "failed"
    assert run.last_error.code == code and run.last_error.message.startswith(message)
    assert run.failed_at is not None and run.completed_at is None
    assert len(standin_bedrock.requests(model)) == attempts  # botocore retries only the call, not a stream
    # Text the model wrote before it failed is kept as a reply cut off by a failed run; else nothing.
    written = {"in-stream-exception": "Let me", "in-stream-throttling": "Let me", "broken": "This reply never"}
    kept = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    if request.node.callspec.id not in written:
        assert kept == []
    else:
        (cut,) = kept
        assert cut.status == "incomplete" and cut.incomplete_details.reason == "run_failed"
        assert cut.content[0].text.value and written[request.node.callspec.id].startswith(cut.content[0].text.value)
    client.beta.threads.messages.create(thread.id, role="user", content="Still there?")  # the thread is free


def test_one_deployment_routes_models_by_prefix_to_openai_and_to_bedrock(client, standin, standin_bedrock):
    gpt = standin.script([standin_model.text("Bonjour! I am GPT.")], prefix="gpt-4o")
    claude = standin_bedrock.script([text("And I am Claude.")], prefix="anthropic.claude-3-haiku-20240307")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who are you?"}])

    first = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_for(client, gpt, instructions="Be GPT.").id
    )
    second = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_for(client, claude, instructions="Be Claude.").id
    )

    assert (first.status, first.model, second.status, second.model) == ("completed", gpt, "completed", claude)
    [to_openai] = standin.requests(gpt)
    assert to_openai["messages"] == [
        {"role": "system", "content": "Be GPT."},
        {"role": "user", "content": "Who are you?"},
    ]
    [to_bedrock] = standin_bedrock.requests(claude)
    assert to_bedrock["system"] == [{"text": "Be Claude."}]
    assert to_bedrock["messages"] == [
        {"role": "user", "content": [{"text": "Who are you?"}]},
        {"role": "assistant", "content": [{"text": "Bonjour! I am GPT."}]},
        # the thread ends with an assistant message: Bedrock is asked to answer, not to continue it
        {"role": "user", "content": [{"text": "(Continue the conversation.)"}]},
    ]
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id, order="asc").data]
    assert texts == ["Who are you?", "Bonjour! I am GPT.", "And I am Claude."]
