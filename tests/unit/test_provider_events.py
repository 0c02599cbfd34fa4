"""A provider's events become a reply only if they make one (base.collect), and the OpenAI mapping of
the neutral request stays inside the OpenAI-compatible provider."""

from __future__ import annotations

import pytest

from chalicelib.runs.providers.base import (
    CalledFunction,
    ChatMessage,
    Finish,
    ForcedFunction,
    FunctionTool,
    ImagePart,
    ModelRequest,
    ProviderError,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
    collect,
)
from chalicelib.runs.providers.offline import OfflineProvider
from chalicelib.runs.providers.openai_compatible import chat_completions_request


def test_deltas_are_put_together_by_call_index():
    reply = collect(
        [
            TextDelta("Let me "),
            ToolCallDelta(1, id="call_b", name="second", arguments='{"b"'),
            ToolCallDelta(0, id="call_a", name="first"),
            ToolCallDelta(0, arguments='{"a": 1}'),
            ToolCallDelta(1, arguments=": 2}"),
            Finish("tool_calls"),
            Usage(5, 6),
        ]
    )
    assert reply.text == "Let me "
    assert [(call.id, call.name, call.arguments) for call in reply.calls] == [
        ("call_a", "first", '{"a": 1}'),
        ("call_b", "second", '{"b": 2}'),
    ]
    assert reply.calls[1].argument_deltas == ['{"b"', ": 2}"]
    assert (reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == ("tool_calls", 5, 6)


@pytest.mark.parametrize(
    "events",
    [
        [TextDelta("cut off")],  # no finish
        [ToolCallDelta(0, arguments="{}"), Finish("tool_calls")],  # a call nobody named
        ["not an event", Finish("stop")],
    ],
)
def test_streams_that_do_not_make_a_reply_are_provider_errors(events):
    with pytest.raises(ProviderError) as refused:
        collect(events)
    assert refused.value.code == "server_error"


def test_the_offline_model_is_a_provider_and_a_test_double():
    request = ModelRequest("m", "", (ChatMessage("user", (TextPart("hi there"),)),))
    assert collect(OfflineProvider().stream(request)).text == "You said: hi there"
    assert OfflineProvider().requests == []  # the default model (one per process) keeps nothing
    instructions_only = ModelRequest("m", "Greet the user", ())
    assert collect(OfflineProvider().stream(instructions_only)).text == "You said: Greet the user"
    scripted = OfflineProvider(lambda request: [TextDelta("scripted"), Finish("length")])
    reply = collect(scripted.stream(request))
    assert (reply.text, reply.finish_reason) == ("scripted", "length")
    assert scripted.requests == [request]


def test_the_neutral_request_maps_onto_chat_completions():
    request = ModelRequest(
        model="gpt-4o",
        system="Be brief.",
        messages=(
            ChatMessage("user", (TextPart("What is this?"), ImagePart(data=b"\x89PNG", media_type="image/png"))),
            ChatMessage("assistant", calls=(CalledFunction("call_1", "look", '{"x": 1}'),)),
            ChatMessage("tool", (TextPart("a cat"),), tool_call_id="call_1"),
        ),
        tools=(FunctionTool("look", "Looks", {"type": "object"}),),
        tool_choice=ForcedFunction("look"),
        parallel_tool_calls=False,
        temperature=0.2,
        max_output_tokens=50,
        response_format={"type": "json_object"},
    )
    body = chat_completions_request(request)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw=="},
    }
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "look", "arguments": '{"x": 1}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
    assert body["tools"] == [
        {"type": "function", "function": {"name": "look", "description": "Looks", "parameters": {"type": "object"}}}
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "look"}}
    assert (body["parallel_tool_calls"], body["temperature"], body["max_tokens"]) == (False, 0.2, 50)
    assert body["response_format"] == {"type": "json_object"}
    assert "top_p" not in body


def test_models_are_routed_to_providers_by_their_longest_prefix(monkeypatch):
    import dataclasses

    from chalicelib import config
    from chalicelib.runs import providers

    monkeypatch.setenv("SPINDLE_MODEL_PROVIDERS", "anthropic.=bedrock, us.anthropic.=bedrock,us.=offline")
    routes = config._model_providers("http://127.0.0.1:1/v1")
    assert routes == {"*": "openai", "anthropic.": "bedrock", "us.anthropic.": "bedrock", "us.": "offline"}
    monkeypatch.setattr(providers, "settings", dataclasses.replace(config.settings, model_providers=routes))
    assert providers.provider_name_for("us.anthropic.claude-3-5-haiku-20241022-v1:0") == "bedrock"
    assert providers.provider_name_for("us.meta.llama3") == "offline"
    assert providers.provider_name_for("gpt-4o") == "openai"
    assert config._model_providers(None) == {"*": "offline", **{k: v for k, v in routes.items() if k != "*"}}

    monkeypatch.setenv("SPINDLE_MODEL_PROVIDERS", "claude=anthropic")
    with pytest.raises(RuntimeError, match="SPINDLE_MODEL_PROVIDERS"):
        config._model_providers(None)
