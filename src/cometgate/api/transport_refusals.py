"""The bodies of the answers the connection layer gives before any route runs (a request head
too large or too slow, see guarded_protocol.py), in the dialect the path names."""

from __future__ import annotations

from starlette.requests import Request

from cometgate.api.error_handlers import render
from cometgate.errors import GatewayError, HeadersTooLarge, RequestTimeout


def refusal_body(
    status: int, message: str, target: str, headers: list[tuple[bytes, bytes]],
) -> tuple[str, bytes]:
    """(content type, body) for a 431 or a 408 answered by the connection itself."""
    path, _, query = target.partition("?")
    scope = {"type": "http", "method": "GET", "path": path or "/",
             "query_string": query.encode("latin-1"), "headers": headers, "state": {}}
    error: GatewayError = HeadersTooLarge(message) if status == 431 else RequestTimeout(message)
    response = render(error, Request(scope))
    return response.media_type or "application/json", bytes(response.body)
