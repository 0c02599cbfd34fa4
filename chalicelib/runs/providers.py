"""Model providers behind one small interface: a chat request in, text or tool calls and usage out.

`OpenAICompatibleProvider` speaks chat completions through the `openai` SDK (OpenAI, vLLM, Ollama and
any compatible server); it is imported lazily so that the CRUD path never pays for it. With no
provider configured, `OfflineProvider` answers deterministically, so local mode works with no key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.config import settings


@dataclass
class ToolCall:
    id: str | None
    name: str
    arguments: str
    argument_deltas: list[str] = field(default_factory=list)  # as streamed; they join to `arguments`


@dataclass
class ChatResult:
    text_deltas: list[str] = field(default_factory=list)  # as streamed; the reply is their concatenation
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.text_deltas)


class ProviderError(Exception):
    """The model could not answer. `code` is the RunObject's last_error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Provider(Protocol):
    def complete(self, request: dict[str, Any]) -> ChatResult: ...


class OpenAICompatibleProvider:
    def __init__(self, base_url: str, api_key: str | None, timeout: float, max_retries: int) -> None:
        import openai  # only runs import the SDK: it costs ~0.5 s of cold start

        self._openai = openai
        self._timeout = timeout
        # The SDK retries 408/409/429/5xx and connection errors with exponential backoff and jitter,
        # honouring Retry-After: exactly the policy the provider calls need.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=max_retries
        )

    def complete(self, request: dict[str, Any]) -> ChatResult:
        """Stream the completion so that each text and tool-call delta can be replayed to clients."""
        openai = self._openai
        result = ChatResult()
        calls: dict[int, ToolCall] = {}
        finished = False  # a stream that breaks off has no finish_reason
        try:
            stream = self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            deadline = time.monotonic() + self._timeout
            for chunk in stream:
                if time.monotonic() > deadline:  # the SDK's timeout bounds each read, not the whole reply
                    stream.close()
                    raise ProviderError("server_error", "The model provider did not finish its reply in time.")
                if chunk.usage is not None:
                    result.prompt_tokens = _count(chunk.usage.prompt_tokens, "usage.prompt_tokens")
                    result.completion_tokens = _count(chunk.usage.completion_tokens, "usage.completion_tokens")
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        result.text_deltas.append(_text(delta.content, "delta.content"))
                    for call_delta in (delta.tool_calls if delta is not None else None) or []:
                        call = calls.setdefault(_count(call_delta.index, "tool_calls[].index"), ToolCall(None, "", ""))
                        function = call_delta.function
                        call.id = call.id or _optional_text(call_delta.id, "tool_calls[].id")
                        if function is not None:
                            call.name = call.name or _optional_text(function.name, "tool_calls[].function.name") or ""
                            if function.arguments:
                                arguments = _text(function.arguments, "tool_calls[].function.arguments")
                                call.arguments += arguments
                                call.argument_deltas.append(arguments)
                    if choice.finish_reason:
                        result.finish_reason = choice.finish_reason
                        finished = True
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
        if not finished:
            raise ProviderError("server_error", "The model provider's stream ended before the reply did.")
        result.tool_calls = [calls[index] for index in sorted(calls)]
        return result


def _malformed(field: str, value: Any) -> ProviderError:
    return ProviderError(
        "server_error", f"The model provider sent a malformed response: `{field}` is {type(value).__name__}."
    )


def _text(value: Any, field: str) -> str:
    """The SDK builds stream chunks without validating them; the engine needs real strings."""
    if not isinstance(value, str):
        raise _malformed(field, value)
    return value


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(field, value)
    return value


class OfflineProvider:
    """A tiny deterministic model for local mode without a provider.

    It calls a function when `tool_choice` requires one (arguments `{}`), reports tool outputs once
    they arrive, and otherwise answers `You said: <the last user text>`. Tokens are counted as words.
    """

    def complete(self, request: dict[str, Any]) -> ChatResult:
        messages = request["messages"]
        prompt_tokens = sum(len(str(message.get("content") or "").split()) for message in messages)
        last = messages[-1] if messages else {}
        forced = self._forced_function(request)
        if forced and last.get("role") != "tool":
            return ChatResult(
                tool_calls=[ToolCall(None, forced, "{}", ["{", "}"])],
                finish_reason="tool_calls",
                prompt_tokens=prompt_tokens,
                completion_tokens=1,
            )
        if last.get("role") == "tool":
            outputs = [m["content"] for m in messages if m.get("role") == "tool"]
            text = "Tool results: " + json.dumps(outputs)
        else:
            text = f"You said: {self._text_of(last)}"
        words = text.split(" ")
        deltas = [words[0]] + [" " + word for word in words[1:]]  # streamed a word at a time
        return ChatResult(text_deltas=deltas, prompt_tokens=prompt_tokens, completion_tokens=len(words))

    @staticmethod
    def _forced_function(request: dict[str, Any]) -> str | None:
        tools = [tool["function"]["name"] for tool in request.get("tools", [])]
        choice = request.get("tool_choice")
        if isinstance(choice, dict):
            return choice["function"]["name"]
        if choice == "required" and tools:
            return tools[0]
        return None

    @staticmethod
    def _text_of(message: dict[str, Any]) -> str:
        content = message.get("content") or ""
        if isinstance(content, str):
            return content
        return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


_provider: Provider | None = None


def provider() -> Provider:
    global _provider
    if _provider is None:
        if settings.llm_base_url:
            _provider = OpenAICompatibleProvider(
                settings.llm_base_url, settings.llm_api_key, settings.llm_timeout_seconds, settings.llm_max_retries
            )
        else:
            _provider = OfflineProvider()
    return _provider
