"""HTTP to an upstream, with every wait bounded: one pooled client per provider, transport
failures translated once, here.

Refused or broken connections → UpstreamUnavailable (503), any timeout → UpstreamTimeout
(504), a connection lost mid-body → a transient UpstreamError. Nothing is retried here:
failover belongs to the pipeline, which can see every candidate.

Timeouts are enforced per await with absolute deadlines rather than by one scope around a
stream, because a stream is an async generator and a timeout scope must never span a `yield`
(it would cancel whatever the consumer is doing at that moment).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing

import httpx

from cometgate.errors import FailureClass, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.timeouts import Timeouts

ERROR_BODY_LIMIT = 64 * 1024  # an error answer is read for its fields, not stored whole
# After the last event only the chunked-encoding terminator should remain; reading it lets
# the connection return to the pool. A server that lingers is not waited for.
_DRAIN_BYTES = 16 * 1024
_DRAIN_SECONDS = 0.5
_FIRST_BYTE_DEADLINE = "cometgate.first_byte_deadline"


class Transport:
    def __init__(
        self, timeouts: Timeouts, *, client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
    ) -> None:
        self.timeouts = timeouts
        # Only the pool we made is ours to close; an injected client belongs to its maker.
        self._owns_client = client is None
        self._client = client or pooled_client(max_connections)
        # The deadlines below govern reading; httpx still bounds connecting and writing.
        self._httpx_timeout = httpx.Timeout(
            connect=timeouts.connect, read=None, write=timeouts.idle, pool=None
        )

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeouts.total

    async def open(
        self, url: str, content: bytes, headers: Mapping[str, str], deadline: float
    ) -> httpx.Response:
        """Sends a POST and waits for the response headers (the first byte)."""
        request = self._client.build_request(
            "POST", url, content=content, headers=dict(headers), timeout=self._httpx_timeout
        )
        first_byte = asyncio.get_running_loop().time() + self.timeouts.first_byte
        try:
            async with asyncio.timeout_at(min(deadline, first_byte)):
                response = await self._client.send(request, stream=True)
                # Servers that queue work (a local model, vLLM) may send headers at once and
                # the first body bytes only when the job starts: the first-byte allowance
                # covers that first chunk too, not just the headers.
                response.extensions[_FIRST_BYTE_DEADLINE] = first_byte
                return response
        except TimeoutError:
            raise self._timed_out(deadline, "no response from the upstream within "
                                  f"{self.timeouts.first_byte:g}s") from None
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach the upstream: {type(exc).__name__}") from exc

    async def read(
        self, response: httpx.Response, deadline: float, *, limit: int | None = None
    ) -> bytes:
        received = bytearray()
        async with aclosing(self.chunks(response, deadline)) as chunks:
            async for chunk in chunks:
                received += chunk
                if limit is not None and len(received) >= limit:
                    break
        return bytes(received)

    async def chunks(
        self, response: httpx.Response, deadline: float
    ) -> AsyncGenerator[bytes, None]:
        """The body, each wait bounded by the idle timeout and the attempt's deadline."""
        loop = asyncio.get_running_loop()
        iterator: AsyncIterator[bytes] = response.aiter_bytes()
        first_chunk_by: float | None = response.extensions.get(_FIRST_BYTE_DEADLINE)
        while True:
            wait_until = loop.time() + self.timeouts.idle
            if first_chunk_by is not None:
                wait_until = max(wait_until, first_chunk_by)
            try:
                async with asyncio.timeout_at(min(deadline, wait_until)):
                    chunk = await anext(iterator)
                first_chunk_by = None
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise self._timed_out(deadline, "the upstream sent nothing for "
                                      f"{self.timeouts.idle:g}s") from None
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(
                    f"the upstream connection was lost mid-response: {type(exc).__name__}",
                    failure_class=FailureClass.TRANSIENT, http_status=503, status="UNAVAILABLE",
                ) from exc
            yield chunk

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _timed_out(self, deadline: float, detail: str) -> UpstreamTimeout:
        if asyncio.get_running_loop().time() >= deadline:
            detail = f"the upstream took longer than {self.timeouts.total:g}s in total"
        return UpstreamTimeout(detail)


async def drained(chunks: AsyncGenerator[bytes, None]) -> None:
    """Reads what little may follow the last event, so the connection can be reused."""
    received = 0
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for chunk in chunks:
                received += len(chunk)
                if received > _DRAIN_BYTES:
                    return
    except (TimeoutError, UpstreamError):
        return  # the response is closed next; the connection is simply not reused


def pooled_client(max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        http1=True,
        http2=False,
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections, keepalive_expiry=30.0),
        # Proxy settings come from configuration, never from the process environment.
        trust_env=False,
        follow_redirects=False,
    )
