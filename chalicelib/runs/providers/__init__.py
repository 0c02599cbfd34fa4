"""Which provider serves a model: `SPINDLE_MODEL_PROVIDERS` maps model names or prefixes to providers.

Each provider is built once per process, on first use (its SDK is imported then, never on the CRUD
path). See base.py for the interface every provider implements.
"""

from __future__ import annotations

from functools import cache

from chalicelib.config import settings
from chalicelib.runs.providers.base import Provider


def provider_name_for(model: str) -> str:
    """The provider the settings route `model` to: the longest matching prefix, else the default."""
    routes = settings.model_providers
    matches = [prefix for prefix in routes if prefix != "*" and model.startswith(prefix)]
    return routes[max(matches, key=len)] if matches else routes["*"]


def provider_for(model: str) -> Provider:
    return _provider(provider_name_for(model))


@cache
def _provider(name: str) -> Provider:
    if name == "openai":
        from chalicelib.runs.providers.openai_compatible import OpenAICompatibleProvider

        if not settings.llm_base_url:
            raise RuntimeError("SPINDLE_MODEL_PROVIDERS routes a model to openai, but SPINDLE_LLM_BASE_URL is unset")
        return OpenAICompatibleProvider(
            settings.llm_base_url,
            settings.llm_api_key,
            settings.llm_timeout_seconds,
            settings.llm_max_retries,
            reply_seconds=settings.llm_reply_max_seconds,
        )
    if name == "bedrock":
        from chalicelib.runs.providers.bedrock import BedrockProvider

        return BedrockProvider(
            settings.bedrock_region or settings.region,
            settings.bedrock_endpoint,
            settings.llm_timeout_seconds,
            reply_seconds=settings.llm_reply_max_seconds,
        )
    from chalicelib.runs.providers.offline import OfflineProvider

    return OfflineProvider(word_seconds=settings.offline_word_seconds)
