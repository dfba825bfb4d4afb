"""Embeddings as an optional capability of a provider, and the two HTTP dialects that serve
them: Gemini's `:batchEmbedContents` and OpenAI's `/embeddings`.

An embedder sends a large request in several calls (Google takes at most 100 inputs per
batch, OpenAI 2048), one after the other, and joins the answers in order. Error answers are
classified by each dialect's own `classify_error`, exactly as for generations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import orjson

from cometgate.canonical import (
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    StreamEvent,
)
from cometgate.dialects.gemini import embed as gemini_embed
from cometgate.dialects.gemini.upstream_errors import classify_error as classify_gemini_error
from cometgate.dialects.openai import embeddings as openai_embeddings
from cometgate.dialects.openai.upstream_errors import classify_error as classify_openai_error
from cometgate.errors import InvalidRequest
from cometgate.providers.base import Target
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Classifier, Transport


@runtime_checkable
class Embeds(Protocol):
    """Turns texts into vectors: one per input, in order."""

    async def embed(self, request: EmbedRequest, target: Target) -> EmbedResponse: ...


class _HttpEmbedder(ABC):
    """The shared half: batching, the exchange, credentials. `transport`, when given, is a
    provider's own connection pool, shared rather than duplicated (and closed by its owner)."""

    batch_limit: int

    def __init__(
        self, base_url: str, api_key: str | None, timeouts: Timeouts, *,
        transport: Transport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._owns_transport = transport is None
        self._transport = transport or Transport(timeouts)

    async def embed(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        answers = [await self._embed_batch(part, target) for part in self._batches(request)]
        return EmbedResponse(
            vectors=tuple(vector for answer in answers for vector in answer.vectors),
            prompt_tokens=sum(answer.prompt_tokens for answer in answers),
        )

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    @abstractmethod
    async def _embed_batch(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        """One call for at most `batch_limit` inputs."""

    def _batches(self, request: EmbedRequest) -> list[EmbedRequest]:
        size = self.batch_limit
        inputs = request.inputs
        return [replace(request, inputs=inputs[i : i + size]) for i in range(0, len(inputs), size)]

    def _credential(self, target: Target) -> str | None:
        return target.credential or self._api_key

    async def _post(
        self, url: str, body: Any, headers: Mapping[str, str], classify: Classifier
    ) -> bytes:
        """One exchange: the whole success body, or the classified error answer."""
        answer, _ = await self._transport.exchange(url, orjson.dumps(body), headers, classify)
        return answer


class GeminiEmbedder(_HttpEmbedder):
    """`base_url` is the server root (https://generativelanguage.googleapis.com); calls go
    to {base}/v1beta/models/{model}:batchEmbedContents with the x-goog-api-key header."""

    batch_limit = gemini_embed.MAX_BATCH

    async def _embed_batch(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        body = gemini_embed.encode_upstream_batch(request, target.upstream_model)
        headers = {"content-type": "application/json"}
        credential = self._credential(target)
        if credential:
            headers["x-goog-api-key"] = credential
        model = gemini_embed.model_resource(target.upstream_model)
        url = f"{self._base_url}/v1beta/{model}:batchEmbedContents"
        answer = await self._post(url, body, headers, classify_gemini_error)
        return gemini_embed.decode_upstream_batch(answer, inputs=request.inputs)


class OpenAIEmbedder(_HttpEmbedder):
    """`base_url` includes the version segment (https://api.openai.com/v1); calls go to
    {base}/embeddings with a Bearer credential."""

    batch_limit = openai_embeddings.MAX_INPUTS

    async def _embed_batch(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        body = openai_embeddings.encode_upstream_embeddings(request, target.upstream_model)
        headers = {"content-type": "application/json"}
        credential = self._credential(target)
        if credential:
            headers["authorization"] = f"Bearer {credential}"
        answer = await self._post(
            f"{self._base_url}/embeddings", body, headers, classify_openai_error)
        return openai_embeddings.decode_upstream_embeddings(answer, inputs=request.inputs)


class GeneratesNothing:
    """For a provider that only makes embeddings: routing refuses generations on embedding
    models before any attempt, so these answer only a misconfigured route (a generation model
    pointed at an embedding provider) — with a refusal that names the provider."""

    name: str

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        raise self._refusal()

    async def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        raise self._refusal()
        yield  # pragma: no cover - makes this an async generator, as the protocol asks

    def _refusal(self) -> InvalidRequest:
        return InvalidRequest(f"provider {self.name} makes embeddings only")
