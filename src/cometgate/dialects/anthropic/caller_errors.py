"""Gateway errors → Anthropic's error answer: (HTTP status, body).

The body is `{"type": "error", "error": {"type": …, "message": …}, "request_id": …}` (the
request id only when there is one). Types follow the status as Anthropic documents them
(`error_types`):

    error                                   status  error.type
    InvalidRequest                          400     invalid_request_error
    ApiKeyInvalid, KeyMissing,              401     authentication_error
      Unauthenticated                                 (Anthropic answers a missing or a bad
                                                      x-api-key with 401, not Google's 400/403)
    PermissionDenied                        403     permission_error
    NotFound                                404     not_found_error
    PayloadTooLarge                         413     request_too_large
    RateLimited, BudgetExhausted            429     rate_limit_error
    UpstreamUnavailable (any 503)           529     overloaded_error
    UpstreamTimeout (504)                   504     timeout_error
    InternalError, other 5xx                as is   api_error
    other 4xx                               as is   invalid_request_error (Anthropic's
                                                      documented catch-all for 4xx)

503 becomes 529: Anthropic never answers 503; 529 overloaded_error is how it says "nothing can
serve this now, retry later", and Anthropic clients treat it so (the SDK retries it; Claude
Code reports it as overload and may fall back to another model). A failure relayed from an
Anthropic upstream (`native_body` ("anthropic", bytes)) keeps the upstream's own body and 4xx
status.
"""

from __future__ import annotations

import orjson

from cometgate.dialects.anthropic.error_types import ERROR_TYPE_OF_STATUS
from cometgate.errors import ApiKeyInvalid, GatewayError, KeyMissing, Unauthenticated

OVERLOADED_STATUS = 529

# Anthropic's own wording for key problems; Google's (in the exception) names other headers.
_KEY_MISSING = "x-api-key header is required"
_KEY_INVALID = "invalid x-api-key"


def encode_anthropic_error(error: GatewayError, request_id: str | None = None) -> tuple[int, bytes]:
    native = getattr(error, "native_body", None)
    if native is not None and native[0] == "anthropic":
        # As Anthropic answered it: a 413 request_too_large stays a 413.
        upstream_status = getattr(error, "upstream_status", None)
        if isinstance(upstream_status, int) and 400 <= upstream_status < 500:
            return upstream_status, native[1]
        return error.http_status, native[1]
    status, kind = _status_and_type(error)
    body: dict[str, object] = {"type": "error",
                               "error": {"type": kind, "message": _message(error)}}
    if request_id is not None:
        body["request_id"] = request_id
    return status, orjson.dumps(body)


def _status_and_type(error: GatewayError) -> tuple[int, str]:
    if isinstance(error, ApiKeyInvalid | KeyMissing | Unauthenticated):
        return 401, "authentication_error"
    status = OVERLOADED_STATUS if error.http_status == 503 else error.http_status
    kind = ERROR_TYPE_OF_STATUS.get(status)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    return status, kind


def _message(error: GatewayError) -> str:
    if isinstance(error, KeyMissing):
        return _KEY_MISSING
    if isinstance(error, ApiKeyInvalid):
        return _KEY_INVALID
    return error.message
