"""Every failure leaves as JSON in the caller's dialect — never an HTML page or a bare 500.
The dialect is the one the route settled on (`caller_dialect`), else the one the path names."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cometgate.api.caller_dialect import dialect_of, settle_unknown_route
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.errors import (
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
)
from cometgate.routing.failover import whole_seconds

log = logging.getLogger("cometgate.errors")

JSON_TYPE = "application/json; charset=UTF-8"


def render(error: GatewayError, request: Request) -> Response:
    status, body = _encoded(error, dialect_of(request), request)
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(whole_seconds(retry_after))
    if isinstance(error, MethodNotAllowed):
        headers["allow"] = ", ".join(error.allow)
    if isinstance(error, RequestTimeout):
        headers["connection"] = "close"  # the rest of a late body must not read as a request
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def _encoded(error: GatewayError, dialect: str, request: Request) -> tuple[int, bytes]:
    state = request.scope.get("state", {})
    return CALLER_CODECS[dialect].encode_error(error, model=state.get("model"),
                                               request_id=state.get("request_id"))


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render(exc, request)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        settle_unknown_route(request)
        where = f"{request.method} {request.url.path}"
        if dialect_of(request) == "openai":  # OpenAI's own wording for a path it lacks
            return render(NotFound(f"Invalid URL ({where})"), request)
        return render(NotFound(f"Method not found: {where}"), request)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")  # from a set: sorted, to be stable
        return render(MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.url.path}.",
            tuple(sorted(m.strip() for m in allow.split(",") if m.strip()))), request)
    error = GatewayError(str(exc.detail))
    error.http_status = exc.status_code
    error.status = "INVALID_ARGUMENT" if exc.status_code < 500 else "INTERNAL"
    return render(error, request)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.exception("unhandled error in request %s", request_id)
    error = InternalError(f"Internal error encountered (request id {request_id}).")
    return render(error, request)
