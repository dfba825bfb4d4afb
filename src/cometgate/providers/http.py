"""Any upstream that speaks OpenAI Chat Completions over HTTP: OpenAI, vLLM, llama.cpp's
server, Ollama, LM Studio, and the gateway's own local model worker.

One shared `httpx.AsyncClient` per provider (a keep-alive pool, HTTP/1.1). Transport failures
are translated here, once: refused or broken connections → UpstreamUnavailable (503), any
timeout → UpstreamTimeout (504), a connection lost mid-body → a transient UpstreamError. HTTP
error answers are classified by the dialect codec. Nothing is retried here: failover belongs
to the pipeline, which can see every candidate.

Timeouts are enforced per await with absolute deadlines rather than by one scope around a
stream, because a stream is an async generator and a timeout scope must never span a `yield`
(it would cancel whatever the consumer is doing at that moment).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import httpx
import orjson

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent, StreamStarted
from cometgate.dialects.openai.outbound import (
    Encoded,
    OpenAIOptions,
    classify_error,
    decode_response,
    decode_stream,
    encode_request,
    encode_tokenize_request,
)
from cometgate.dialects.sse_decode import decode_sse
from cometgate.errors import (
    FailureClass,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from cometgate.providers.base import Target
from cometgate.providers.timeouts import Timeouts

_log = logging.getLogger(__name__)
_ERROR_BODY_LIMIT = 64 * 1024  # an error answer is read for its fields, not stored whole
# After `[DONE]` only the chunked-encoding terminator should remain; reading it lets the
# connection return to the pool. A server that lingers is not waited for.
_DRAIN_BYTES = 16 * 1024
_DRAIN_SECONDS = 0.5


class HttpProvider:
    """Provider over an OpenAI-compatible HTTP API. `base_url` includes the version segment
    (e.g. http://127.0.0.1:9000/v1). The credential of a Target wins over `api_key`."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None = None,
        options: OpenAIOptions,
        timeouts: Timeouts,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._options = options
        self._timeouts = timeouts
        # Only the pool we made is ours to close; an injected client belongs to its maker.
        self._owns_client = client is None
        self._client = client or _pooled_client(max_connections)
        # The deadlines below govern reading; httpx still bounds connecting and writing.
        self._httpx_timeout = httpx.Timeout(
            connect=timeouts.connect, read=None, write=timeouts.idle, pool=None
        )

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        encoded = self._encoded(request, target, stream=False)
        body = await self._exchange(f"{self._base_url}/chat/completions", encoded.body, target)
        return replace(decode_response(body, request, target.model_version),
                       dropped=encoded.dropped)

    async def stream(self, request: GenerateRequest, target: Target) -> AsyncGenerator[
        StreamEvent, None
    ]:
        """Events as they arrive. Closing the generator early closes the upstream response,
        so the upstream stops generating for a caller who has gone."""
        encoded = self._encoded(request, target, stream=True)
        deadline = self._deadline()
        url = f"{self._base_url}/chat/completions"
        response = await self._open(url, encoded.body, target, deadline, sse=True)
        try:
            if not response.is_success:
                raise await self._classified(response, deadline)
            chunks = self._chunks(response, deadline)
            async with (
                aclosing(chunks),
                aclosing(decode_sse(chunks)) as frames,
                aclosing(decode_stream(frames, request, target.model_version)) as events,
            ):
                async for event in events:
                    if isinstance(event, StreamStarted) and encoded.dropped:
                        event = replace(event, dropped=encoded.dropped)
                    yield event
                await _drained(chunks)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _encoded(self, request: GenerateRequest, target: Target, *, stream: bool) -> Encoded:
        encoded = encode_request(request, target.upstream_model, stream=stream,
                                 options=self._options)
        if encoded.dropped:
            _log.info("provider %s dropped: %s", self.name, "; ".join(encoded.dropped))
        return encoded

    async def _exchange(self, url: str, body: dict[str, Any], target: Target) -> bytes:
        """One non-streaming request; the whole success body, or the classified error."""
        deadline = self._deadline()
        response = await self._open(url, body, target, deadline, sse=False)
        try:
            if not response.is_success:
                raise await self._classified(response, deadline)
            return await self._read(response, deadline)
        finally:
            await response.aclose()

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._timeouts.total

    async def _open(
        self, url: str, body: dict[str, Any], target: Target, deadline: float, *, sse: bool
    ) -> httpx.Response:
        """Sends the request and waits for the response headers (the first byte)."""
        request = self._client.build_request(
            "POST", url, content=orjson.dumps(body), headers=self._headers(target, sse=sse),
            timeout=self._httpx_timeout,
        )
        first_byte = asyncio.get_running_loop().time() + self._timeouts.first_byte
        try:
            async with asyncio.timeout_at(min(deadline, first_byte)):
                return await self._client.send(request, stream=True)
        except TimeoutError:
            raise self._timed_out(deadline, "no response from the upstream within "
                                  f"{self._timeouts.first_byte:g}s") from None
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach the upstream: {type(exc).__name__}") from exc

    def _headers(self, target: Target, *, sse: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if sse else "application/json",
        }
        key = target.credential or self._api_key
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def _classified(self, response: httpx.Response, deadline: float) -> UpstreamError:
        body = await self._read(response, deadline, limit=_ERROR_BODY_LIMIT)
        return classify_error(response.status_code, response.headers, body)

    async def _read(
        self, response: httpx.Response, deadline: float, *, limit: int | None = None
    ) -> bytes:
        received = bytearray()
        async with aclosing(self._chunks(response, deadline)) as chunks:
            async for chunk in chunks:
                received += chunk
                if limit is not None and len(received) >= limit:
                    break
        return bytes(received)

    async def _chunks(self, response: httpx.Response, deadline: float) -> AsyncGenerator[
        bytes, None
    ]:
        """The body, each wait bounded by the idle timeout and the attempt's deadline."""
        loop = asyncio.get_running_loop()
        iterator: AsyncIterator[bytes] = response.aiter_bytes()
        while True:
            try:
                async with asyncio.timeout_at(min(deadline, loop.time() + self._timeouts.idle)):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise self._timed_out(deadline, "the upstream sent nothing for "
                                      f"{self._timeouts.idle:g}s") from None
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(
                    f"the upstream connection was lost mid-response: {type(exc).__name__}",
                    failure_class=FailureClass.TRANSIENT, http_status=503, status="UNAVAILABLE",
                ) from exc
            yield chunk

    def _timed_out(self, deadline: float, detail: str) -> UpstreamTimeout:
        if asyncio.get_running_loop().time() >= deadline:
            detail = f"the upstream took longer than {self._timeouts.total:g}s in total"
        return UpstreamTimeout(detail)


class TokenizingHttpProvider(HttpProvider):
    """An upstream with vLLM's `POST /tokenize` at the server root. A separate class so that
    `isinstance(provider, CountsTokens)` is true only where counting really works."""

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int:
        root = self._base_url.removesuffix("/v1")
        body = encode_tokenize_request(request, target.upstream_model)
        answer = await self._exchange(f"{root}/tokenize", body, target)
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


def http_provider(
    name: str,
    *,
    base_url: str,
    api_key: str | None = None,
    options: OpenAIOptions,
    timeouts: Timeouts,
    client: httpx.AsyncClient | None = None,
) -> HttpProvider:
    """The provider class whose capabilities match `options` (see TokenizingHttpProvider)."""
    kind = TokenizingHttpProvider if options.tokenize_endpoint else HttpProvider
    return kind(name, base_url=base_url, api_key=api_key, options=options, timeouts=timeouts,
                client=client)


async def _drained(chunks: AsyncGenerator[bytes, None]) -> None:
    received = 0
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for chunk in chunks:
                received += len(chunk)
                if received > _DRAIN_BYTES:
                    return
    except (TimeoutError, UpstreamError):
        return  # the response is closed next; the connection is simply not reused


def _pooled_client(max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        http1=True,
        http2=False,
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections, keepalive_expiry=30.0),
        # Proxy settings come from configuration, never from the process environment.
        trust_env=False,
        follow_redirects=False,
    )
