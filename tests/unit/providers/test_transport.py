"""The first-byte allowance covers a queued server's first body chunk, not only its headers;
with an injected httpx client (in-process fakes) and with the default client over sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.unit.providers.raw_upstream import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    Handler,
    Peer,
    chunk,
    raw_upstream,
)

from cometgate.errors import FailureClass, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Transport


def slow_body(first_after: float) -> httpx.AsyncClient:
    async def body() -> AsyncIterator[bytes]:
        await asyncio.sleep(first_after)  # headers went out at once; the job was queued
        yield b"data: first\n\n"
        yield b"data: second\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def read_all(transport: Transport) -> bytes:
    deadline = transport.deadline()
    response = await transport.open("http://upstream.test/x", b"{}", {}, deadline)
    try:
        return await transport.read(response, deadline)
    finally:
        await response.aclose()


async def test_a_queued_first_chunk_may_take_the_first_byte_allowance() -> None:
    timeouts = Timeouts(connect=1, first_byte=0.5, idle=0.05, total=5)
    transport = Transport(timeouts, client=slow_body(first_after=0.2))
    assert await read_all(transport) == b"data: first\n\ndata: second\n\n"


async def test_a_first_chunk_later_than_the_allowance_times_out() -> None:
    timeouts = Timeouts(connect=1, first_byte=0.1, idle=0.05, total=5)
    transport = Transport(timeouts, client=slow_body(first_after=0.5))
    with pytest.raises(UpstreamTimeout):
        await read_all(transport)


# The same allowances, and the error semantics, with the default client over real sockets.


def held_body(first_after: float, then_silent: float = 0.0) -> Handler:
    """Headers at once; the first chunk after `first_after`; the second after `then_silent`."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD)
        await asyncio.sleep(first_after)
        await peer.send(chunk(b"data: first\n\n"))
        await asyncio.sleep(then_silent)
        await peer.send(chunk(b"data: second\n\n") + LAST_CHUNK)

    return handler


async def read_from(timeouts: Timeouts, handler: Handler) -> bytes:
    transport = Transport(timeouts)
    try:
        async with raw_upstream(handler) as upstream:
            deadline = transport.deadline()
            response = await transport.open(upstream.url(), b"{}", {}, deadline)
            try:
                return await transport.read(response, deadline)
            finally:
                await response.aclose()
    finally:
        await transport.aclose()


async def test_over_sockets_a_queued_first_chunk_may_take_the_first_byte_allowance() -> None:
    timeouts = Timeouts(connect=1, first_byte=0.5, idle=0.05, total=5)
    assert await read_from(timeouts, held_body(first_after=0.2)) == (
        b"data: first\n\ndata: second\n\n")


async def test_over_sockets_a_first_chunk_later_than_the_allowance_times_out() -> None:
    timeouts = Timeouts(connect=1, first_byte=0.1, idle=0.05, total=5)
    with pytest.raises(UpstreamTimeout, match="sent nothing"):
        await read_from(timeouts, held_body(first_after=0.5))


async def test_over_sockets_silence_after_the_first_chunk_is_bounded_by_idle() -> None:
    timeouts = Timeouts(connect=1, first_byte=5, idle=0.1, total=5)
    with pytest.raises(UpstreamTimeout, match=r"sent nothing for 0\.1s"):
        await read_from(timeouts, held_body(first_after=0, then_silent=1.0))


async def test_over_sockets_headers_later_than_the_first_byte_allowance_time_out() -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await asyncio.sleep(1.0)

    timeouts = Timeouts(connect=1, first_byte=0.1, idle=5, total=5)
    with pytest.raises(UpstreamTimeout, match=r"no response from the upstream within 0\.1s"):
        await read_from(timeouts, handler)


async def test_over_sockets_the_total_deadline_names_itself() -> None:
    timeouts = Timeouts(connect=1, first_byte=5, idle=5, total=0.2)
    with pytest.raises(UpstreamTimeout, match=r"longer than 0\.2s in total"):
        await read_from(timeouts, held_body(first_after=0, then_silent=1.0))


async def test_over_sockets_a_reset_before_the_answer_is_unavailable() -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        peer.reset()

    with pytest.raises(UpstreamUnavailable):
        await read_from(Timeouts(connect=1, first_byte=5, idle=5, total=5), handler)


async def test_over_sockets_a_reset_mid_body_is_transient_not_unavailable() -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: first\n\n"))
        peer.reset()

    with pytest.raises(UpstreamError) as caught:
        await read_from(Timeouts(connect=1, first_byte=5, idle=5, total=5), handler)
    assert not isinstance(caught.value, UpstreamUnavailable | UpstreamTimeout)
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.http_status == 503


async def test_over_sockets_read_stops_at_its_limit_and_the_rest_is_not_reused() -> None:
    transport = Transport(Timeouts(connect=1, first_byte=5, idle=5, total=5))
    async with raw_upstream(held_body(first_after=0, then_silent=1.0)) as upstream:
        deadline = transport.deadline()
        response = await transport.open(upstream.url(), b"{}", {}, deadline)
        assert await transport.read(response, deadline, limit=4) == b"data: first\n\n"
        await response.aclose()
        await transport.aclose()
    assert len(upstream.peers) == 1
