"""Reading request bodies within the configured size limit and pace."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from cometgate.errors import CallerGone, InvalidRequest, PayloadTooLarge, RequestTimeout


@dataclass(frozen=True, slots=True)
class BodyPace:
    """How long a body may take: `floor` seconds plus one second per `min_rate` bytes received.
    A caller that stalls mid-body (or trickles it) is answered 408 once it falls behind."""

    floor: float = 10.0
    min_rate: int = 64 * 1024

    def deadline(self, started: float, received: int) -> float:
        return started + self.floor + received / self.min_rate


async def read_body(request: Request, limit: int, pace: BodyPace = BodyPace()) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it is known to exceed `limit` — from the
    declared Content-Length when there is one, else while reading, so an oversized upload is
    never buffered whole — or RequestTimeout once it falls behind `pace`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout_at(pace.deadline(started, 0)) as clock:
            # ASGI messages read directly: Starlette's stream() wraps each in an async
            # generator step, which cost as much again as the reading.
            while True:
                message = await request.receive()
                if message["type"] != "http.request":  # http.disconnect
                    raise ClientDisconnect()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(size, limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
                clock.reschedule(pace.deadline(started, size))
    except ClientDisconnect:
        # The caller left mid-body: nobody is there to answer, and it is not our failure.
        raise CallerGone(
            "The client closed the connection before the request body arrived.") from None
    except TimeoutError:
        raise RequestTimeout(
            f"Timed out reading the request body ({size} bytes received)."
        ) from None
    body = b"".join(chunks)
    # Where Starlette keeps a body it read itself: a later `request.body()` (an error
    # handler's, say) answers from it instead of waiting on a stream already consumed.
    request._body = body
    return body


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request payload size exceeds the limit: {limit} bytes (received at least {size})."
    )
