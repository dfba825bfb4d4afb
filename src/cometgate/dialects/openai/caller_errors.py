"""Gateway errors → OpenAI's error envelope `{"error":{"message","type","param","code"}}`.

Statuses, types and codes as OpenAI sends them (its error-code guide, and bodies quoted in
public issue threads):

| error                      | status | type                      | code                  |
|----------------------------|--------|---------------------------|-----------------------|
| ApiKeyInvalid              | 401    | invalid_request_error     | invalid_api_key       |
| KeyMissing                 | 401    | invalid_request_error     | null (OpenAI's own)   |
| Unauthenticated            | 401    | invalid_request_error     | null                  |
| PermissionDenied, any 403  | 403    | request_forbidden         | null                  |
| NotFound (a model)         | 404    | invalid_request_error     | model_not_found       |
| InvalidRequest             | 400    | invalid_request_error     | its code, else null   |
| PayloadTooLarge            | 413    | invalid_request_error     | null                  |
| RateLimited, 429 upstream  | 429    | requests                  | rate_limit_exceeded   |
| BudgetExhausted            | 429    | insufficient_quota        | insufficient_quota    |
| 503 (UpstreamUnavailable…) | 503    | service_unavailable_error | null                  |
| other 5xx (InternalError…) | status | server_error              | null                  |

An InvalidRequest's `param` is the key of its first violation (null without one).
An upstream's own OpenAI error body (`native_body`) reaches the caller unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from cometgate.errors import (
    ApiKeyInvalid,
    BudgetExhausted,
    GatewayError,
    InvalidRequest,
    KeyMissing,
    NotFound,
    PermissionDenied,
)

_INVALID = "invalid_request_error"
INVALID_KEY_MESSAGE = "Incorrect API key provided."
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def encode_openai_error(error: GatewayError, *, model: str | None = None) -> tuple[int, bytes]:
    """(HTTP status, body). `model`: the model the request named, given by routes where a
    NotFound can only be about that model (chat completions, GET /models/{id}); it makes the
    answer OpenAI's model_not_found."""
    native = _native_body(error)
    if native is not None:
        return error.http_status, native
    status, body = openai_error(error, model=model)
    return status, orjson.dumps(body)


def openai_error(error: GatewayError, *, model: str | None = None) -> tuple[int, dict[str, Any]]:
    """The status and the envelope, for callers that frame it themselves (a stream)."""
    if isinstance(error, ApiKeyInvalid):
        return 401, _envelope(INVALID_KEY_MESSAGE, _INVALID, code="invalid_api_key")
    if isinstance(error, KeyMissing):
        return 401, _envelope(MISSING_KEY_MESSAGE, _INVALID)
    if isinstance(error, NotFound) and model is not None:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return 404, _envelope(message, _INVALID, code="model_not_found")
    kind, code = _type_and_code(error)
    return error.http_status, _envelope(error.message, kind, _param(error), code)


def native_openai_body(error: GatewayError) -> dict[str, Any] | None:
    """An InvalidRequest's `param` is the key of its first violation (null without one).
An upstream's own OpenAI error body as an object, when there is one and it parses."""
    native = _native_body(error)
    if native is None:
        return None
    try:
        document = orjson.loads(native)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _native_body(error: GatewayError) -> bytes | None:
    native = getattr(error, "native_body", None)  # only UpstreamError has the attribute
    if native is not None and native[0] == "openai":
        body: bytes = native[1]
        return body
    return None


def _type_and_code(error: GatewayError) -> tuple[str, str | None]:
    if isinstance(error, BudgetExhausted):
        return "insufficient_quota", "insufficient_quota"
    if error.http_status == 429:
        return "requests", "rate_limit_exceeded"
    if isinstance(error, PermissionDenied) or error.http_status == 403:
        return "request_forbidden", None
    if error.http_status == 503:
        return "service_unavailable_error", None
    if error.http_status >= 500:
        return "server_error", None
    return _INVALID, error.code if isinstance(error, InvalidRequest) else None


def _param(error: GatewayError) -> str | None:
    if isinstance(error, InvalidRequest) and error.violations:
        return next(iter(error.violations))
    return None


def _envelope(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
