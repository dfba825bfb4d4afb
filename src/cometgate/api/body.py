"""Reading request bodies within the configured size limit."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from cometgate.errors import InvalidRequest, PayloadTooLarge, RequestRejected


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
        raise CallerGone() from None
    return b"".join(chunks)


class CallerGone(RequestRejected):
    """The caller closed the connection before its request body arrived."""

    http_status = 499
    status = "CANCELLED"

    def __init__(self) -> None:
        super().__init__("The client closed the connection before the request body arrived.")


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request payload size exceeds the limit: {limit} bytes (received at least {size})."
    )
