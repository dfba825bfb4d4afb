"""Size bounds on upstream answers, checked as the bytes arrive: the event counter on its own,
then the transport over sockets (an oversized answer closes its connection)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tests.unit.providers.raw_upstream import CHUNKED_HEAD, LAST_CHUNK, Peer, chunk, raw_upstream

from cometgate.errors import FailureClass, UpstreamError
from cometgate.providers.answer_bounds import EventBound
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Transport


def feed_all(limit: int, *chunks: bytes) -> None:
    bound = EventBound(limit)
    for piece in chunks:
        bound.feed(piece)


@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r", b"\r\n\n", b"\n\r\n"])
def test_events_up_to_the_limit_pass_whatever_their_line_ends(end: bytes) -> None:
    event = b"data: " + b"a" * 94  # 100 bytes before its end
    feed_all(100, (event + end) * 50)
    feed_all(100, *[piece for _ in range(50) for piece in (event[:30], event[30:], end)])


@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_an_event_end_split_across_two_chunks_is_seen(end: bytes) -> None:
    event = b"data: " + b"a" * 94
    feed_all(150, event + end[:1], end[1:] + event + end[:1], end[1:] + event)


def test_an_event_that_never_ends_fails_once_past_the_limit() -> None:
    bound = EventBound(100)
    bound.feed(b"data: " + b"a" * 60)
    with pytest.raises(UpstreamError) as caught:
        bound.feed(b"a" * 60)
    assert caught.value.http_status == 502
    assert caught.value.failure_class is FailureClass.UNKNOWN
    assert caught.value.message == "One event of the upstream's stream exceeded 100 bytes."


def test_a_long_event_inside_one_chunk_among_short_ones_fails() -> None:
    with pytest.raises(UpstreamError, match="exceeded 100 bytes"):
        feed_all(100, b"data: a\n\n" + b"data: " + b"b" * 200 + b"\n\ndata: c\n\n")


def test_the_unfinished_event_counts_what_came_before_in_earlier_chunks() -> None:
    with pytest.raises(UpstreamError):
        feed_all(100, b"data: x\n\ndata: " + b"a" * 50, b"a" * 30, b"a" * 30 + b"\n\n")


async def endless_body(peer: Peer) -> None:
    await peer.read_request()
    await peer.send(CHUNKED_HEAD)
    with contextlib.suppress(ConnectionError):
        for _ in range(1024):  # 64 MiB at most: the client must hang up long before
            await peer.send(chunk(b"x" * 65536))
        await peer.send(LAST_CHUNK)


async def test_an_answer_beyond_max_answer_bytes_is_502_and_its_connection_closed() -> None:
    limit = 1024 * 1024
    transport = Transport(Timeouts(connect=1, first_byte=5, idle=5, total=30,
                                   max_answer_bytes=limit))
    try:
        async with raw_upstream(endless_body) as upstream:
            with pytest.raises(UpstreamError) as caught:
                await transport.exchange(upstream.url(), b"{}", {}, classify=_unused)
            (peer,) = upstream.peers
            assert await hung_up(peer)
    finally:
        await transport.aclose()
    assert caught.value.http_status == 502
    assert caught.value.message == f"The upstream's answer exceeded {limit} bytes."


async def test_an_answer_within_max_answer_bytes_is_read_whole() -> None:
    async def small(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"y" * 5000) + chunk(b"y" * 5000) + LAST_CHUNK)

    transport = Transport(Timeouts(max_answer_bytes=10_000))
    try:
        async with raw_upstream(small) as upstream:
            body, _ = await transport.exchange(upstream.url(), b"{}", {}, classify=_unused)
    finally:
        await transport.aclose()
    assert body == b"y" * 10_000


async def hung_up(peer: Peer) -> bool:
    """The client closed its end (a FIN, or a reset for the bytes it never read)."""
    try:
        return await asyncio.wait_for(peer.reader.read(), timeout=5) == b""
    except ConnectionResetError:
        return True


def _unused(status: int, headers: object, body: bytes) -> UpstreamError:
    raise AssertionError("the answers here are successes")
