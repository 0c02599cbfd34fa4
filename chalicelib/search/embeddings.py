"""Embeddings for semantic search: one small interface, two providers, chosen by SPINDLE_EMBEDDINGS.

- `openai:<model>`: an OpenAI-compatible `/embeddings` endpoint through the `openai` SDK (OpenAI, vLLM,
  Ollama), at SPINDLE_EMBEDDINGS_BASE_URL (default: the chat model's SPINDLE_LLM_BASE_URL) with
  SPINDLE_EMBEDDINGS_API_KEY (default: SPINDLE_LLM_API_KEY); SPINDLE_EMBEDDINGS_DIMENSIONS is sent as
  `dimensions` when set.
- `bedrock:<model id>`: Amazon Bedrock, `InvokeModel` with Titan Text Embeddings v2's body
  (`inputText`, `dimensions` 256, 512 or 1024 (default 1024), `normalize: true`), one text a call as
  Titan takes it.

Unset, there are no embeddings and search is keyword search alone. Either SDK is imported only when a
text is embedded, never on the API's cold start. Vectors come back normalised to unit length, so a
dot product is their cosine similarity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

from chalicelib.config import settings

BATCH = 64  # texts per request to an OpenAI-compatible endpoint
TITAN_DIMENSIONS = (256, 512, 1024)


class EmbeddingError(Exception):
    """The embeddings provider failed or answered something that is not embeddings."""


class Embedder(Protocol):
    model: str  # as recorded on a store: "<provider>:<model>"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, all of one length."""
        ...


def _unit(vector: Any, source: str) -> list[float]:
    if not isinstance(vector, list) or not vector or not all(isinstance(x, int | float) for x in vector):
        raise EmbeddingError(f"{source} sent an embedding that is not a list of numbers.")
    norm = math.sqrt(sum(float(x) * float(x) for x in vector))
    if not math.isfinite(norm):
        raise EmbeddingError(f"{source} sent an embedding that is not finite.")
    return [float(x) / norm for x in vector] if norm else [0.0] * len(vector)  # a zero vector is like nothing


class OpenAIEmbedder:
    def __init__(self, model: str, base_url: str | None, api_key: str | None, dimensions: int | None) -> None:
        self.model = f"openai:{model}"
        self._name = model
        self._base_url = base_url
        self._api_key = api_key or "none"
        self._dimensions = dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import openai  # the SDK loads only where texts are embedded

        client = openai.OpenAI(
            base_url=self._base_url,
            api_key=self._api_key,
            timeout=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
        )
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            extra: dict[str, Any] = {"dimensions": self._dimensions} if self._dimensions else {}
            try:
                response = client.embeddings.create(model=self._name, input=batch, **extra)
            except openai.OpenAIError as error:
                raise EmbeddingError(f"The embeddings endpoint failed: {error}") from error
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingError(f"The embeddings endpoint sent {len(data)} embeddings for {len(batch)} texts.")
            vectors += [_unit(item.embedding, "The embeddings endpoint") for item in data]
        return vectors


class TitanEmbedder:
    def __init__(self, model: str, dimensions: int | None) -> None:
        self.model = f"bedrock:{model}"
        self._model_id = model
        self._dimensions = dimensions or 1024
        if self._dimensions not in TITAN_DIMENSIONS:
            raise RuntimeError(f"SPINDLE_EMBEDDINGS_DIMENSIONS must be one of {TITAN_DIMENSIONS} for Titan v2")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "bedrock-runtime",
            region_name=settings.bedrock_region or settings.region,
            endpoint_url=settings.bedrock_endpoint,
        )
        vectors = []
        for text in texts:
            body = {"inputText": text, "dimensions": self._dimensions, "normalize": True}
            try:
                response = client.invoke_model(
                    modelId=self._model_id,
                    body=json.dumps(body),
                    contentType="application/json",
                    accept="application/json",
                )
                answer = json.loads(response["body"].read())
            except (BotoCoreError, ClientError, ValueError) as error:
                raise EmbeddingError(f"Amazon Bedrock could not embed the text: {error}") from error
            vectors.append(_unit(answer.get("embedding") if isinstance(answer, dict) else None, "Amazon Bedrock"))
        return vectors


@cache
def configured() -> Embedder | None:
    """The embeddings provider the settings name, or None for keyword search alone."""
    spec = settings.embeddings
    if not spec:
        return None
    provider, _, model = spec.partition(":")
    if provider == "openai" and model:
        base_url = settings.embeddings_base_url or settings.llm_base_url
        api_key = settings.embeddings_api_key or settings.llm_api_key
        return OpenAIEmbedder(model, base_url, api_key, settings.embeddings_dimensions)
    if provider == "bedrock" and model:
        return TitanEmbedder(model, settings.embeddings_dimensions)
    raise RuntimeError(f"SPINDLE_EMBEDDINGS must be `openai:<model>` or `bedrock:<model id>`, not {spec!r}")
