"""Reading a request body from its ASGI messages: pieces joined, the limit kept while reading,
a caller who leaves mid-body, a stall — and the body kept where Starlette looks for it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.types import Message

from cometgate.api.body import BodyPace, read_body
from cometgate.errors import CallerGone, PayloadTooLarge, RequestTimeout


def _request(messages: list[Message], *, declared: int | None = None) -> Request:
    pending: Iterator[Message] = iter(messages)

    async def receive() -> Message:
        try:
            return next(pending)
        except StopIteration:
            await asyncio.sleep(3600)  # a caller that sends nothing more
            raise AssertionError("unreachable") from None

    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers,
                    "query_string": b""}, receive)


def _piece(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


@pytest.mark.asyncio
async def test_pieces_are_joined_and_kept_for_a_later_read() -> None:
    request = _request([_piece(b'{"a":', True), _piece(b"", True), _piece(b"1}", False)])
    assert await read_body(request, 100) == b'{"a":1}'
    assert await request.body() == b'{"a":1}'  # from what was kept: the stream is consumed


@pytest.mark.asyncio
async def test_the_limit_is_kept_while_reading_without_a_declared_length() -> None:
    request = _request([_piece(b"x" * 60, True), _piece(b"x" * 60, False)])
    with pytest.raises(PayloadTooLarge, match="received at least 120"):
        await read_body(request, 100)


@pytest.mark.asyncio
async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge, match="received at least 500"):
        await read_body(_request([], declared=500), 100)


@pytest.mark.asyncio
async def test_a_caller_leaving_mid_body_is_gone_not_a_failure() -> None:
    request = _request([_piece(b"{", True), {"type": "http.disconnect"}])
    with pytest.raises(CallerGone):
        await read_body(request, 100)


@pytest.mark.asyncio
async def test_a_stalled_body_times_out_with_what_arrived() -> None:
    request = _request([_piece(b"abc", True)])
    with pytest.raises(RequestTimeout, match=r"\(3 bytes received\)"):
        await read_body(request, 100, BodyPace(floor=0.05, min_rate=1 << 30))
