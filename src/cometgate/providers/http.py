"""Any upstream reached over HTTP through an outbound codec: OpenAI Chat Completions (OpenAI,
vLLM, llama.cpp's server, Ollama, LM Studio, the gateway's own local worker) and Anthropic
Messages. The provider does the I/O; the codec decides the bytes and reads them back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace

import httpx
import orjson

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent, StreamStarted
from cometgate.dialects.openai.upstream_codec import OpenAICodec
from cometgate.dialects.openai.upstream_request import OpenAIOptions, encode_tokenize_request
from cometgate.dialects.sse_decode import decode_sse
from cometgate.dialects.upstream_codec import Encoded, OutboundCodec
from cometgate.errors import FailureClass, InvalidRequest, UpstreamError
from cometgate.providers.base import Target
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import (
    Transport,
    drained,
)

_log = logging.getLogger(__name__)


class HttpProvider:
    """`base_url` is what the codec's paths are relative to: for OpenAI-compatible servers it
    includes the version segment (http://127.0.0.1:9000/v1), for Anthropic it is the server
    root. The credential of a Target wins over `api_key`. `codec` defaults to OpenAI Chat
    Completions configured by `options`."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None = None,
        options: OpenAIOptions | None = None,
        codec: OutboundCodec | None = None,
        timeouts: Timeouts,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
        transport: Transport | None = None,
    ) -> None:
        """`transport`, when given, is another provider's connection pool, shared rather than
        duplicated, and closed by its owner."""
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._codec: OutboundCodec = codec or OpenAICodec(options or OpenAIOptions())
        self._owns_transport = transport is None
        self._transport = transport or Transport(
            timeouts, client=client, max_connections=max_connections)

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        encoded = self._encoded(request, target, stream=False)
        body = await self._exchange(
            self._url(target, stream=False), orjson.dumps(encoded.body), target,
            extra=encoded.headers)
        response = self._codec.decode_response(body, request, target.model_version)
        return replace(response, dropped=encoded.dropped + response.dropped)

    async def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        """Events as they arrive. Closing the generator early closes the upstream response,
        so the upstream stops generating for a caller who has gone."""
        encoded = self._encoded(request, target, stream=True)
        chunks = self._open_stream(
            self._url(target, stream=True), orjson.dumps(encoded.body), target,
            extra=encoded.headers)
        async with (
            aclosing(chunks),
            aclosing(decode_sse(chunks)) as frames,
            aclosing(self._codec.decode_stream(frames, request, target.model_version)) as events,
        ):
            async for event in events:
                if isinstance(event, StreamStarted) and encoded.dropped:
                    event = replace(event, dropped=encoded.dropped)
                yield event
            await drained(chunks)  # what follows the last event, so the connection is reused

    def _open_stream(
        self, url: str, body: bytes, target: Target,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> AsyncGenerator[bytes, None]:
        """The body of a streamed answer as it arrives (see Transport.stream)."""
        headers = _with(self._codec.headers(self._credential(target), stream=True), extra)
        return self._transport.stream(url, body, headers, self._codec.classify_error)

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    def _url(self, target: Target, *, stream: bool) -> str:
        return self._base_url + self._codec.path(target.upstream_model, stream=stream)

    def _credential(self, target: Target) -> str | None:
        return target.credential or self._api_key

    def _encoded(self, request: GenerateRequest, target: Target, *, stream: bool) -> Encoded:
        encoded = self._codec.encode_request(request, target.upstream_model, stream=stream)
        if encoded.dropped and target.strict:
            # The model's translation policy says refuse rather than drop; nothing was sent.
            raise InvalidRequest(
                "This upstream cannot carry: " + "; ".join(encoded.dropped),
                violations=dict(entry.partition(": ")[::2] for entry in encoded.dropped),
            )
        if encoded.dropped:
            _log.info("provider %s dropped: %s", self.name, "; ".join(encoded.dropped))
        return encoded

    async def _exchange(
        self, url: str, body: bytes, target: Target, extra: tuple[tuple[str, str], ...] = ()
    ) -> bytes:
        """One non-streaming request; the whole success body, or the classified error."""
        headers = _with(self._codec.headers(self._credential(target), stream=False), extra)
        answer, _ = await self._transport.exchange(url, body, headers, self._codec.classify_error)
        return answer


class TokenizingHttpProvider(HttpProvider):
    """An OpenAI-compatible upstream with vLLM's `POST /tokenize` at the server root. A
    separate class so that `isinstance(provider, CountsTokens)` is true only where counting
    really works."""

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int:
        root = self._base_url.removesuffix("/v1")
        body = encode_tokenize_request(request, target.upstream_model)
        answer = await self._exchange(f"{root}/tokenize", orjson.dumps(body), target)
        try:
            document = orjson.loads(answer)
        except orjson.JSONDecodeError:
            document = None
        count = document.get("count") if isinstance(document, dict) else None
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        tokens = document.get("tokens") if isinstance(document, dict) else None
        if isinstance(tokens, list):
            return len(tokens)
        raise UpstreamError("unreadable upstream response: the tokenize answer has no count",
                            failure_class=FailureClass.UNKNOWN, http_status=502,
                            status="UNAVAILABLE")




def _with(headers: dict[str, str], extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The codec's headers and a request's own; a list-valued header (anthropic-beta) that
    both name gets both values."""
    for name, value in extra:
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers
