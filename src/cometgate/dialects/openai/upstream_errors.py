"""OpenAI-compatible error answers → the failure the pipeline acts on: a whole answer's
status and `error` object, and an `error` event in place of a stream chunk. Only structured
fields decide (HTTP status, error.type, error.code), never the message text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.dialects.retry_after import header_wait
from cometgate.dialects.upstream_answers import error_message as _message
from cometgate.dialects.upstream_answers import failure as _failure
from cometgate.errors import FailureClass, UpstreamError

CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"  # OpenAI's error.code for it


# OpenAI's own codes for a refused key or account; `authentication_error` is the type
# llama.cpp's server and many OpenAI-compatible proxies give a refused key.
_CREDENTIAL_CODES = frozenset({"invalid_api_key", "account_deactivated", "invalid_organization",
                               "no_organization", "unsupported_country_region_territory"})
_CREDENTIAL_TYPES = frozenset({"authentication_error"})


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    failure = _classified(status, headers, body)
    if failure.failure_class is FailureClass.CALLER_FAULT and body.lstrip().startswith(b"{"):
        failure.native_body = ("openai", body)  # an OpenAI caller gets the upstream's answer
    return failure


def _classified(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """An upstream's error answer as the failure the pipeline acts on. Only structured fields
    decide (HTTP status, error.type, error.code), never the message text.

    A 401 always means the gateway's credential (the only one an upstream call carries); a
    403 only when error.type or error.code says the key, its account or its region is refused
    — otherwise it is something this caller may not do, returned to them as 403
    PERMISSION_DENIED, and no reason to rest the credential for every caller.

    What the caller sees: their own fault (400/413/422, or 404 for anything but an unknown
    model) → 400 INVALID_ARGUMENT with the upstream's message, marked `prompt_too_long` when
    error.code is context_length_exceeded (OpenAI's, and the local worker's);
    a rejected credential or spent quota is the operator's problem, not the caller's →
    503 UNAVAILABLE; rate limited → 429 RESOURCE_EXHAUSTED with the upstream's retry delay;
    408/409/5xx → 503 UNAVAILABLE (504 DEADLINE_EXCEEDED for an upstream 504)."""
    error = _error_fields(body)
    kind, code = error.get("type"), error.get("code")
    message = _message(error, status)
    if status == 401 or (status == 403 and _names_credential(kind, code)):
        return _failure("upstream credential rejected", FailureClass.CREDENTIAL, status, 503)
    if status == 403 and code == "model_not_found":  # the project lacks the configured model
        return _failure(f"upstream failed (HTTP {status})", FailureClass.UNKNOWN, status, 502)
    if status == 403:
        return UpstreamError(message, failure_class=FailureClass.CALLER_FAULT,
                             upstream_status=status, http_status=403,
                             status="PERMISSION_DENIED")
    if status == 429 or "insufficient_quota" in (kind, code):
        if "insufficient_quota" in (kind, code):
            return _failure("upstream quota exhausted", FailureClass.QUOTA, status, 503)
        return UpstreamError(
            "upstream rate limit reached", failure_class=FailureClass.RATE_LIMITED,
            upstream_status=status, http_status=429, status="RESOURCE_EXHAUSTED",
            retry_after=header_wait(headers),
        )
    if status in (400, 413, 422) or (status == 404 and code != "model_not_found"
                                      and kind == "invalid_request_error"):
        return UpstreamError(message, failure_class=FailureClass.CALLER_FAULT,
                             upstream_status=status, http_status=400, status="INVALID_ARGUMENT",
                             prompt_too_long=code == CONTEXT_LENGTH_EXCEEDED)
    if status == 504:
        return _failure("upstream timed out", FailureClass.TRANSIENT, status, 504,
                        "DEADLINE_EXCEEDED")
    if status in (408, 409) or 500 <= status <= 599:
        return _failure(f"upstream unavailable (HTTP {status})", FailureClass.TRANSIENT,
                        status, 503)
    # An unknown model or route means the gateway's configuration is wrong, not the request.
    return _failure(f"upstream failed (HTTP {status})", FailureClass.UNKNOWN, status, 502)


def _names_credential(kind: object, code: object) -> bool:
    # Any JSON may stand where a string belongs: only strings are looked up.
    return (isinstance(kind, str) and kind in _CREDENTIAL_TYPES) or (
        isinstance(code, str) and code in _CREDENTIAL_CODES)


def classify_stream_error(data: bytes) -> UpstreamError:
    """An error sent as a `data:` frame after a 200: vLLM and llama.cpp put the HTTP status in
    error.code; OpenAI sends only a type."""
    error = _error_fields(data)
    code = error.get("code")
    if isinstance(code, int) and 400 <= code <= 599:
        status = code
    else:
        status = 400 if error.get("type") == "invalid_request_error" else 500
    return classify_error(status, {}, data)


def _error_fields(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body.decode("utf-8", "replace").strip()}
    if not isinstance(document, dict):
        return {}
    error = document.get("error", document)  # vLLM once sent the fields at the top level
    if isinstance(error, str):
        return {"message": error}  # Ollama: {"error": "<message>"}
    return error if isinstance(error, dict) else {}
