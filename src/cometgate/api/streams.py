"""Response bodies of streams in any dialect, translated or forwarded, with their accounting.

Once the first byte has gone out a failure can only be reported in-band, in the caller's
dialect (Gemini: a final error event with an integer code, which the SDKs raise on). The piece
that ends a stream — the one that says the answer finished, and anything after it — is held
back until the request's usage record is committed, so a caller who received the whole answer
always has its record.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from cometgate.api.caller_watch import CallerWatch
from cometgate.canonical import CandidateFinished, StreamEvent, StreamUsage, Usage
from cometgate.dialects.caller_codec import ForwardedFraming, StreamEncoder
from cometgate.errors import GatewayError, InternalError, UpstreamError
from cometgate.metering import CANCELLED, Served, served_failure
from cometgate.providers.base import RawChunk

log = logging.getLogger("cometgate.api")

OnEnd = Callable[[Served], Awaitable[None]]
CLIENT_GONE = 499  # the caller closed the connection before the end (nginx's convention)


async def encoded_stream(
    encoder: StreamEncoder, events: AsyncIterator[StreamEvent], on_end: OnEnd,
    usage: StreamUsage, *, arrived: Callable[[], None] = lambda: None,
) -> AsyncGenerator[bytes, None]:
    """A translated stream in the caller's dialect. `usage` is the stream's own account of
    what it reported (StreamOutcome.usage), filled as `events` are read; it is not kept
    again here. `arrived` is told of every event as it comes (the record's time to first
    byte), here rather than in one more generator around `events`."""
    held: list[bytes] = []
    served: Served | None = None
    try:
        try:
            final = False
            async for event in events:
                arrived()
                final = final or isinstance(event, CandidateFinished)
                for piece in encoder.feed(event):
                    if final:
                        held.append(piece)
                    else:
                        yield piece
            tail = encoder.end()
            served = Served(200, usage.usage)
        except Exception as exc:
            tail = encoder.fail(_as_gateway_error(exc))
            served = _failed(exc, usage.usage)
        await _ended(on_end, served)
        for piece in (*held, *tail):
            yield piece
    finally:
        await _closed(events)
        if served is None:
            await _ended(on_end, Served(CLIENT_GONE, usage.usage, failure_class=CANCELLED))


async def forwarded_stream(
    chunks: AsyncIterator[RawChunk], *, framing: ForwardedFraming, on_end: OnEnd,
    usage: StreamUsage, arrived: Callable[[], None] = lambda: None,
) -> AsyncGenerator[bytes, None]:
    """A same-dialect upstream's stream, relayed piece by piece as received; `usage` and
    `arrived` as for `encoded_stream`."""
    held: list[bytes] = []
    opened = False
    served: Served | None = None
    in_band: UpstreamError | None = None  # the upstream's own error event, relayed as is
    try:
        try:
            async for chunk in chunks:
                arrived()
                in_band = chunk.error or in_band
                if not chunk.data:  # nothing for the caller (a piece the gateway asked for)
                    continue
                opened = opened or bool(chunk.data.strip(b"[ \r\n"))
                if held or framing.is_final(chunk.data):
                    held.append(chunk.data)
                else:
                    yield chunk.data
            tail: tuple[bytes, ...] = ()
            # The caller saw 200 and then the upstream's error event: the record says the
            # request failed, with the status and class a translated stream records for it.
            served = Served(200, usage.usage) if in_band is None else _failed(in_band, usage.usage)
        except Exception as exc:
            tail = (framing.error(_as_gateway_error(exc), opened=opened),)
            served = _failed(exc, usage.usage)
        await _ended(on_end, served)
        for piece in (*held, *tail):
            yield piece
    finally:
        await _closed(chunks)
        if served is None:
            await _ended(on_end, Served(CLIENT_GONE, usage.usage, failure_class=CANCELLED))


class CallerStream(StreamingResponse):
    """A streamed answer that stops as soon as its caller is gone: the body stops being read
    (so the upstream's stream is closed and stops generating for no one), and the request is
    recorded 499 with the usage the upstream had reported. Starlette's own StreamingResponse
    relies on a cancel scope that a firehose upstream can outrun forever (see caller_watch);
    here the relaying task is cancelled outright, and every chunk checks the flag too.

    The body is closed whatever ends the response, and `on_end` is called once more with a
    499: a body that never started (the caller left first) has recorded nothing; for any
    other the request is already recorded and this does nothing."""

    def __init__(
        self, content: AsyncGenerator[bytes, None], *, on_end: OnEnd, media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._body = content
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        over = False
        watch = CallerWatch(receive, settling=lambda: over)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for chunk in self._body:
                if watch.gone:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            else:
                over = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except BaseException as exc:
            if not watch.caused(exc):
                raise
        finally:
            watch.stop()
            await _closed(self._body)
            await _ended(self._on_end, Served(CLIENT_GONE, failure_class=CANCELLED))


async def _closed(items: AsyncIterator[object]) -> None:
    """Closes what a stream relays at once, down to the upstream's response: a generator
    left suspended would hold its upstream connection until it is garbage-collected."""
    close = getattr(items, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()


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
