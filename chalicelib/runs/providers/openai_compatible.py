"""OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, Bedrock's OpenAI-compatible endpoint, and
any compatible server) through the `openai` SDK, streamed.

The whole chat-completions mapping lives here: the neutral request becomes `messages`, `tools`,
`tool_choice`, … and each streamed chunk becomes typed events. The SDK builds chunks without
validating them, so every value is type-checked before it leaves this module.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

from chalicelib.runs.providers.base import (
    Boundary,
    ChatMessage,
    Events,
    Finish,
    FinishReason,
    ForcedFunction,
    ImagePart,
    ModelRequest,
    ProviderError,
    ProviderEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

_wire = Boundary("The model provider sent a malformed response")
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAICompatibleProvider:
    def __init__(
        self, base_url: str, api_key: str | None, timeout: float, max_retries: int, reply_seconds: float | None = None
    ) -> None:
        """`timeout` bounds each wait for the model; `reply_seconds` (default: `timeout`) the whole reply."""
        import openai  # only runs import the SDK: it costs ~0.5 s of cold start

        self._openai = openai
        self._reply_seconds = reply_seconds or timeout
        # The SDK retries 408/409/429/5xx and connection errors with exponential backoff and jitter,
        # honouring Retry-After: exactly the policy the provider calls need.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=max_retries
        )

    def stream(self, request: ModelRequest) -> Events:
        openai = self._openai
        try:
            stream = self._client.chat.completions.create(
                **chat_completions_request(request), stream=True, stream_options={"include_usage": True}
            )
            deadline = time.monotonic() + self._reply_seconds
            try:
                for chunk in stream:
                    if time.monotonic() > deadline:  # the SDK's timeout bounds each read, not the whole reply
                        raise ProviderError("server_error", "The model provider did not finish its reply in time.")
                    yield from _events(chunk)
            finally:  # also when the engine stops reading (a cancel): the model's connection is closed
                stream.close()
        except openai.RateLimitError as error:
            raise ProviderError(
                "rate_limit_exceeded", f"The model provider is rate limiting: {error.message}"
            ) from error
        except openai.APITimeoutError as error:
            raise ProviderError("server_error", "The model provider did not answer in time.") from error
        except openai.APIError as error:
            raise ProviderError("server_error", f"The model provider failed: {error.message}") from error
        except ProviderError:
            raise
        except (AttributeError, IndexError, TypeError, ValueError) as error:
            raise ProviderError("server_error", "The model provider sent a malformed response.") from error
        except Exception as error:  # the connection broke mid-stream (httpx errors are not APIErrors here)
            raise ProviderError("server_error", f"The model provider's stream broke: {error}") from error


def _events(chunk: Any) -> Iterator[ProviderEvent]:
    """One streamed chunk as events: its text, tool-call pieces and finish, then its usage."""
    for choice in chunk.choices or []:
        delta = choice.delta
        if delta is not None and delta.content:
            yield TextDelta(_wire.text(delta.content, "delta.content"))
        for call in (delta.tool_calls if delta is not None else None) or []:
            function = call.function
            yield ToolCallDelta(
                index=_wire.count(call.index, "tool_calls[].index"),
                id=_wire.optional_text(call.id, "tool_calls[].id"),
                name=_wire.optional_text(function.name, "tool_calls[].function.name") if function is not None else None,
                arguments=_wire.optional_text(function.arguments, "tool_calls[].function.arguments") or ""
                if function is not None
                else "",
            )
        if choice.finish_reason:
            # Servers add reasons of their own (e.g. "eos", "abort"): the reply ended, as with "stop".
            yield Finish(FINISH_REASONS.get(_wire.text(choice.finish_reason, "finish_reason"), "stop"))
    if chunk.usage is not None:
        yield Usage(
            _wire.count(chunk.usage.prompt_tokens, "usage.prompt_tokens"),
            _wire.count(chunk.usage.completion_tokens, "usage.completion_tokens"),
        )


# --- the request --------------------------------------------------------------------------------


def chat_completions_request(request: ModelRequest) -> dict[str, Any]:
    """The neutral request as chat completions parameters."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    messages += [_chat_message(message) for message in request.messages]
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    key: value
                    for key, value in (
                        ("name", tool.name),
                        ("description", tool.description),
                        ("parameters", tool.parameters),
                        ("strict", tool.strict),
                    )
                    if value is not None
                },
            }
            for tool in request.tools
        ]
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if isinstance(choice, ForcedFunction) else choice
        )
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        body["response_format"] = dict(request.response_format)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_output_tokens is not None:
        body["max_tokens"] = request.max_output_tokens  # what vLLM and Ollama understand
    return body


def _chat_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    if message.calls:
        return {
            "role": "assistant",
            "content": message.text or None,
            "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in message.calls
            ],
        }
    if all(not isinstance(part, ImagePart) for part in message.parts):
        return {"role": message.role, "content": message.text}
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            url = part.url or f"data:{part.media_type};base64,{base64.b64encode(part.data or b'').decode('ascii')}"
            image = {"url": url} if part.detail is None else {"url": url, "detail": part.detail}
            content.append({"type": "image_url", "image_url": image})
        else:
            content.append({"type": "text", "text": part.text})
    return {"role": message.role, "content": content}
