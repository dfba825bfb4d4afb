"""An OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio) that also
takes OpenAI-dialect callers' requests as they are: the fast, faithful path. Gemini and
Anthropic callers still reach it through the translating HttpProvider it extends."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import httpx

from cometgate.canonical import EmbedRequest, EmbedResponse
from cometgate.canonical.images import ImageRequest, ImageResponse
from cometgate.dialects.openai.passthrough import (
    ForwardedEvents,
    answer_for_caller,
    caller_wants_usage,
    forwarded_body,
    usage_of_response,
)
from cometgate.dialects.openai.upstream_codec import OpenAICodec
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.dialects.responses import passthrough as responses
from cometgate.providers.base import RawCall, RawChunk, RawResponse, Target
from cometgate.providers.embedding import OpenAIEmbedder
from cometgate.providers.http import HttpProvider, TokenizingHttpProvider
from cometgate.providers.images import OpenAIImageMaker
from cometgate.providers.timeouts import Timeouts


class OpenAIUpstream(HttpProvider):
    dialect = "openai"

    def searches_web(self) -> bool:
        """OpenAI's search models (`web_search: true`): dialects.openai.web_search."""
        return isinstance(self._codec, OpenAICodec) and self._codec.options.web_search

    async def embed(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        embedder = OpenAIEmbedder(self._base_url, self._api_key, self._transport.timeouts,
                                  transport=self._transport)
        return await embedder.embed(request, target)

    async def make_images(self, request: ImageRequest, target: Target) -> ImageResponse:
        """For a model configured `task: image`: the server's Images API."""
        maker = OpenAIImageMaker(self._base_url, self._api_key, self._transport)
        return await maker.make_images(request, target)

    async def forward(self, call: RawCall, target: Target) -> RawResponse:
        body = await self._exchange(
            self._url(target, stream=False), self._forwarded(call, target), target)
        answer = answer_for_caller(body, target.model_version)
        return RawResponse(answer, "application/json", usage_of_response(body))

    async def forward_stream(
        self, call: RawCall, target: Target
    ) -> AsyncGenerator[RawChunk, None]:
        """Events as they arrive; an error status raises before anything is yielded, so the
        pipeline can still fail over."""
        assert call.document is not None
        events = ForwardedEvents(caller_wants_usage=caller_wants_usage(call.document),
                                 model=target.model_version)
        async with aclosing(
            self._open_stream(self._url(target, stream=True), self._forwarded(call, target),
                              target)
        ) as chunks:
            async for piece in chunks:
                for event in events.feed(piece):
                    yield RawChunk(event.data, event.usage, event.error)
        for event in events.close():
            yield RawChunk(event.data, event.usage, event.error)

    def _forwarded(self, call: RawCall, target: Target) -> bytes:
        if call.document is None:
            raise ValueError("an OpenAI-dialect call carries its parsed body")
        return forwarded_body(call.document, target.upstream_model)


class TokenizingOpenAIUpstream(OpenAIUpstream, TokenizingHttpProvider):
    """With vLLM's /tokenize, for token counts."""


class ResponsesOpenAIUpstream(OpenAIUpstream):
    """An upstream that also serves the Responses API (`POST {base_url}/responses`): a
    Responses caller's request is forwarded with only its model rewritten."""

    forwarded_dialects = ("openai", "responses")

    async def forward(self, call: RawCall, target: Target) -> RawResponse:
        if call.method != "responses":
            return await super().forward(call, target)
        body = await self._exchange(self._responses_url, self._responses_body(call, target),
                                    target)
        return RawResponse(body, "application/json", responses.usage_of_response(body))

    async def forward_stream(
        self, call: RawCall, target: Target
    ) -> AsyncGenerator[RawChunk, None]:
        if call.method != "responses":
            async with aclosing(super().forward_stream(call, target)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        events = responses.ForwardedResponseEvents()
        async with aclosing(self._open_stream(
                self._responses_url, self._responses_body(call, target), target)) as pieces:
            async for piece in pieces:
                for event in events.feed(piece):
                    yield RawChunk(event.data, event.usage, event.error)
        for event in events.close():
            yield RawChunk(event.data, event.usage, event.error)

    @property
    def _responses_url(self) -> str:
        return self._base_url + "/responses"

    def _responses_body(self, call: RawCall, target: Target) -> bytes:
        if call.document is None:
            raise ValueError("a Responses call carries its parsed body")
        return responses.forwarded_body(call.document, target.upstream_model)


class TokenizingResponsesOpenAIUpstream(ResponsesOpenAIUpstream, TokenizingHttpProvider):
    """Serves the Responses API and vLLM's /tokenize."""


def http_provider(
    name: str,
    *,
    base_url: str,
    api_key: str | None = None,
    options: OpenAIOptions,
    timeouts: Timeouts,
    client: httpx.AsyncClient | None = None,
) -> OpenAIUpstream:
    """The OpenAI-compatible provider class whose capabilities match `options`."""
    kinds: dict[tuple[bool, bool], type[OpenAIUpstream]] = {
        (False, False): OpenAIUpstream, (True, False): TokenizingOpenAIUpstream,
        (False, True): ResponsesOpenAIUpstream, (True, True): TokenizingResponsesOpenAIUpstream,
    }
    kind = kinds[options.tokenize_endpoint, options.responses_api]
    return kind(name, base_url=base_url, api_key=api_key, options=options, timeouts=timeouts,
                client=client)
