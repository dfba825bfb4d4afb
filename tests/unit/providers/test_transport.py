"""The first-byte allowance covers a queued server's first body chunk, not only its headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from cometgate.errors import UpstreamTimeout
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
