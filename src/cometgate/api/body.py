"""Reading request bodies within the configured size limit."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from cometgate.errors import CallerGone, InvalidRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it is known to exceed `limit` — from the
    declared Content-Length when there is one, else while reading, so an oversized upload is
    never buffered whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # The caller left mid-body: nobody is there to answer, and it is not our failure.
        raise CallerGone(
            "The client closed the connection before the request body arrived.") from None
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request payload size exceeds the limit: {limit} bytes (received at least {size})."
    )
