"""Response bodies of Gemini streams, translated or forwarded, with their accounting.

Once the first byte has gone out a failure can only be reported in-band: a final error event
(integer code, `error` first) that the SDKs raise on. The piece that ends a stream — the one
carrying `finishReason`, and anything after it — is held back until the request's usage
record is committed, so a caller who received the whole answer always has its record.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from cometgate.canonical import StreamEvent, Usage, UsageReported
from cometgate.dialects.gemini.errors import encode_stream_error
from cometgate.dialects.gemini.stream import GeminiStreamEncoder
from cometgate.errors import GatewayError, InternalError
from cometgate.metering import Served, served_failure
from cometgate.providers.base import RawChunk

log = logging.getLogger("cometgate.api")

OnEnd = Callable[[Served], Awaitable[None]]
CLIENT_GONE = 499  # the caller closed the connection before the end (nginx's convention)
_FINAL_MARK = b'"finishReason"'


async def encoded_stream(
    encoder: GeminiStreamEncoder, events: AsyncIterator[StreamEvent], on_end: OnEnd
) -> AsyncIterator[bytes]:
    usage: Usage | None = None
    held: list[bytes] = []
    served: Served | None = None
    try:
        try:
            async for event in events:
                if isinstance(event, UsageReported):
                    usage = event.usage
                for piece in encoder.feed(event):
                    if held or _FINAL_MARK in piece:
                        held.append(piece)
                    else:
                        yield piece
            tail = encoder.end()
            served = Served(200, usage)
        except Exception as exc:
            tail = encoder.fail(_as_gateway_error(exc))
            served = _failed(exc, usage)
        await _ended(on_end, served)
        for piece in (*held, *tail):
            yield piece
    finally:
        if served is None:
            await _ended(on_end, Served(CLIENT_GONE, usage, failure_class="cancelled"))


async def forwarded_stream(
    chunks: AsyncIterator[RawChunk], *, sse: bool, on_end: OnEnd
) -> AsyncIterator[bytes]:
    """A same-dialect upstream's stream, relayed piece by piece as received."""
    usage: Usage | None = None
    held: list[bytes] = []
    opened = False
    served: Served | None = None
    try:
        try:
            async for chunk in chunks:
                usage = chunk.usage or usage
                opened = opened or bool(chunk.data.strip(b"[ \r\n"))
                if held or _FINAL_MARK in chunk.data:
                    held.append(chunk.data)
                else:
                    yield chunk.data
            tail: tuple[bytes, ...] = ()
            served = Served(200, usage)
        except Exception as exc:
            tail = (_forwarded_error(_as_gateway_error(exc), sse=sse, opened=opened),)
            served = _failed(exc, usage)
        await _ended(on_end, served)
        for piece in (*held, *tail):
            yield piece
    finally:
        if served is None:
            await _ended(on_end, Served(CLIENT_GONE, usage, failure_class="cancelled"))


async def _ended(on_end: OnEnd, served: Served) -> None:
    # Shielded: when the caller disconnects, the response task is being cancelled, and the
    # usage record must still be written.
    with anyio.CancelScope(shield=True):
        await on_end(served)


def _failed(exc: Exception, usage: Usage | None) -> Served:
    failure = served_failure(exc)
    return Served(failure.status, usage, failure_class=failure.failure_class)


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log.exception("stream failed after the first byte", exc_info=exc)
    return InternalError("Internal error encountered.")


def _forwarded_error(error: GatewayError, *, sse: bool, opened: bool) -> bytes:
    """An error event (SSE), or an error element closing the JSON array."""
    event = encode_stream_error(error)
    if sse:
        return event
    payload = event.removeprefix(b"data: ").strip()
    return (b",\r\n" if opened else b"") + payload + b"]"
