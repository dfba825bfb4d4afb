"""HTTP to an upstream, with every wait bounded: one pooled client per provider, and the same
error semantics whichever client carries the bytes.

Refused or broken connections → UpstreamUnavailable (503), any timeout → UpstreamTimeout
(504), a connection lost mid-body → a transient UpstreamError. Nothing is retried here:
failover belongs to the pipeline, which can see every candidate. (The HTTP/1.1 client resends
only a request that a server's idle-connection close kept from being read; see http1.)

The default client is providers/http1's. An injected httpx.AsyncClient (tests reach
in-process ASGI fakes that way) is adapted to the same response type, its errors translated
once, in the adapter.

Timeouts are enforced per await with absolute deadlines rather than by one scope around a
stream, because a stream is an async generator and a timeout scope must never span a `yield`
(it would cancel whatever the consumer is doing at that moment).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Protocol

import httpx

from cometgate.errors import FailureClass, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.answer_bounds import EventBound, answer_too_large
from cometgate.providers.http1 import Http1Client
from cometgate.providers.timeouts import Timeouts

# A dialect's reading of an error answer: (status, headers, body) → the failure to raise.
Classifier = Callable[[int, Mapping[str, str], bytes], UpstreamError]
ERROR_BODY_LIMIT = 64 * 1024  # an error answer is read for its fields, not stored whole
# After the last event only the chunked-encoding terminator should remain; reading it lets
# the connection return to the pool. A server that lingers is not waited for.
_DRAIN_BYTES = 16 * 1024
_DRAIN_SECONDS = 0.5


class UpstreamResponse(Protocol):
    """An upstream's answer once its headers are in. `headers` looks names up in lowercase.
    `first_chunk_by`: until when the first body chunk may take (the first-byte allowance);
    None once it has come."""

    first_chunk_by: float | None

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def is_success(self) -> bool: ...

    def read_nowait(self) -> bytes | None:
        """What is buffered; b"" at the end; None: wait with next_chunk."""

    async def next_chunk(self) -> bytes:
        """The next piece of body, b"" at the end; failures as UpstreamError."""

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class Transport:
    def __init__(
        self, timeouts: Timeouts, *, client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
    ) -> None:
        self.timeouts = timeouts
        self._client: UpstreamClient = (
            Http1Client(connect_timeout=timeouts.connect, max_connections=max_connections)
            if client is None else HttpxClientAdapter(client, timeouts)
        )

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeouts.total

    async def open(
        self, url: str, content: bytes, headers: Mapping[str, str], deadline: float
    ) -> UpstreamResponse:
        """Sends a POST and waits for the response headers (the first byte)."""
        first_byte = asyncio.get_running_loop().time() + self.timeouts.first_byte
        try:
            async with asyncio.timeout_at(min(deadline, first_byte)):
                response = await self._client.post(url, content, headers)
        except TimeoutError:
            raise self._timed_out(deadline, "no response from the upstream within "
                                  f"{self.timeouts.first_byte:g}s") from None
        # Servers that queue work (a local model, vLLM) may send headers at once and the
        # first body bytes only when the job starts: the first-byte allowance covers that
        # first chunk too, not just the headers.
        response.first_chunk_by = first_byte
        return response

    async def read(
        self, response: UpstreamResponse, deadline: float, *, limit: int | None = None
    ) -> bytes:
        """The body up to `limit` bytes (what an error answer is read for); without one, the
        whole body, or a 502 once it passes max_answer_bytes."""
        received: list[bytes] = []
        size = 0
        while chunk := await self._next_chunk(response, deadline):
            received.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
            if limit is None and size > self.timeouts.max_answer_bytes:
                raise answer_too_large(self.timeouts.max_answer_bytes)
        return b"".join(received)

    async def chunks(
        self, response: UpstreamResponse, deadline: float
    ) -> AsyncGenerator[bytes, None]:
        """The body, each wait bounded by the idle timeout and the attempt's deadline."""
        while chunk := await self._next_chunk(response, deadline):
            yield chunk

    async def exchange(
        self, url: str, content: bytes, headers: Mapping[str, str], classify: Classifier
    ) -> tuple[bytes, Mapping[str, str]]:
        """One request answered whole: the success body and headers, or the error answer
        turned into an UpstreamError by the dialect's `classify`."""
        deadline = self.deadline()
        response = await self.open(url, content, headers, deadline)
        try:
            await self._refuse_failure(response, deadline, classify)
            return await self.read(response, deadline), response.headers
        finally:
            await response.aclose()

    async def stream(
        self, url: str, content: bytes, headers: Mapping[str, str], classify: Classifier
    ) -> AsyncGenerator[bytes, None]:
        """A streamed answer's body as it arrives. An error status raises before anything is
        yielded (failover can still move on); closing the generator early closes the upstream
        response, so the upstream stops generating for a caller who has gone."""
        deadline = self.deadline()
        response = await self.open(url, content, headers, deadline)
        bound = EventBound(self.timeouts.max_event_bytes)
        try:
            await self._refuse_failure(response, deadline, classify)
            while chunk := await self._next_chunk(response, deadline):
                bound.feed(chunk)
                yield chunk
        finally:
            await response.aclose()  # unread to the end, its connection is closed

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _refuse_failure(
        self, response: UpstreamResponse, deadline: float, classify: Classifier
    ) -> None:
        if not response.is_success:
            body = await self.read(response, deadline, limit=ERROR_BODY_LIMIT)
            raise classify(response.status_code, response.headers, body)

    async def _next_chunk(self, response: UpstreamResponse, deadline: float) -> bytes:
        """b"" at the end. What is already buffered costs no timer."""
        loop = asyncio.get_running_loop()
        chunk = response.read_nowait()
        if chunk is None:
            wait_until = loop.time() + self.timeouts.idle
            first_chunk_by = response.first_chunk_by
            if first_chunk_by is not None and first_chunk_by > wait_until:
                wait_until = first_chunk_by
            try:
                async with asyncio.timeout_at(min(deadline, wait_until)):
                    chunk = await response.next_chunk()
            except TimeoutError:
                raise self._timed_out(deadline, "the upstream sent nothing for "
                                      f"{self.timeouts.idle:g}s") from None
        elif loop.time() >= deadline:  # a firehose never waits, so look at the clock
            raise self._timed_out(deadline, "")
        response.first_chunk_by = None
        return chunk

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


class HttpxClientAdapter:
    """An httpx.AsyncClient behind the UpstreamClient interface. The client belongs to its
    maker: closing the adapter leaves it open."""

    def __init__(self, client: httpx.AsyncClient, timeouts: Timeouts) -> None:
        self._client = client
        # The Transport's deadlines govern reading; httpx still bounds connecting and writing.
        self._timeout = httpx.Timeout(
            connect=timeouts.connect, read=None, write=timeouts.idle, pool=None)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpxResponse:
        request = self._client.build_request(
            "POST", url, content=body, headers=dict(headers), timeout=self._timeout)
        try:
            return HttpxResponse(await self._client.send(request, stream=True))
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"cannot reach the upstream: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        return None


class HttpxResponse:
    """An httpx streaming response as an UpstreamResponse."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._body: AsyncIterator[bytes] = response.aiter_bytes()
        self.first_chunk_by: float | None = None

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def is_success(self) -> bool:
        return self._response.is_success

    def read_nowait(self) -> bytes | None:
        return None  # httpx has no way to ask without waiting

    async def next_chunk(self) -> bytes:
        try:
            async for chunk in self._body:
                if chunk:
                    return chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"the upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the upstream connection was lost mid-response: {type(exc).__name__}",
                failure_class=FailureClass.TRANSIENT, http_status=503, status="UNAVAILABLE",
            ) from exc
        return b""

    async def aclose(self) -> None:
        await self._response.aclose()
