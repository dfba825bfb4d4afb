"""Every failure leaves as JSON in the caller's dialect — never an HTML page or a bare 500."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cometgate.dialects.gemini.errors import api_key_invalid_error, encode_error
from cometgate.errors import ApiKeyInvalid, GatewayError, InternalError, NotFound

log = logging.getLogger("cometgate.errors")

JSON_TYPE = "application/json; charset=UTF-8"


def render(error: GatewayError) -> Response:
    native = getattr(error, "native_body", None)
    if native is not None and native[0] == "gemini":
        status, body = error.http_status, native[1]
    elif isinstance(error, ApiKeyInvalid):
        status, body = api_key_invalid_error()
    else:
        status, body = encode_error(error)
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["retry-after"] = str(max(1, round(retry_after)))
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return render(NotFound(f"Method not found: {request.method} {request.url.path}"))
    if exc.status_code == 405:
        error = GatewayError(f"Method {request.method} is not allowed on {request.url.path}.")
        error.http_status, error.status = 405, "UNIMPLEMENTED"
        return render(error)
    error = GatewayError(str(exc.detail))
    error.http_status = exc.status_code
    error.status = "INVALID_ARGUMENT" if exc.status_code < 500 else "INTERNAL"
    return render(error)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.exception("unhandled error in request %s", request_id)
    return render(InternalError(f"Internal error encountered (request id {request_id})."))
