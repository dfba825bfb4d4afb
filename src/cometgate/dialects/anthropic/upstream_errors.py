"""Anthropic error answers → the failure the pipeline acts on.

The envelope is `{"type": "error", "error": {"type": …, "message": …}, "request_id": …}`, with
the same `error` object in an SSE `error` event when a stream fails after its 200. Only
structured fields decide — error.type, then the HTTP status when the type is missing or new
(Anthropic says the set of types may grow) — never the message text:

    error.type              status  class          caller sees
    invalid_request_error   400     CALLER_FAULT   400 INVALID_ARGUMENT, upstream message
    request_too_large       413     CALLER_FAULT   400 INVALID_ARGUMENT, upstream message
    authentication_error    401     CREDENTIAL     503 UNAVAILABLE
    permission_error        403     CALLER_FAULT   403 PERMISSION_DENIED, upstream message
      (the key may not use what this request names — a model, a file, a feature; another
       caller's request may be fine, so the credential is not rested for everyone)
    billing_error           402     QUOTA          503 UNAVAILABLE
    rate_limit_error        429     RATE_LIMITED   429 RESOURCE_EXHAUSTED, retry delay
      (error.details.error_code "enforced_spend_limit_reached": QUOTA, 503 — retrying is
       useless until the spend limit resets)
    not_found_error         404     UNKNOWN        502 UNAVAILABLE (a configuration fault)
    timeout_error           504     TRANSIENT      504 DEADLINE_EXCEEDED
    api_error               500     TRANSIENT      503 UNAVAILABLE
    overloaded_error        529     TRANSIENT      503 UNAVAILABLE
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from cometgate.dialects.anthropic.error_types import ERROR_TYPE_OF_STATUS, STATUS_OF_ERROR_TYPE
from cometgate.dialects.retry_after import retry_after as retry_after_value
from cometgate.dialects.retry_after import wait_until
from cometgate.dialects.upstream_answers import error_message as _message
from cometgate.dialects.upstream_answers import failure as _failure
from cometgate.errors import FailureClass, UpstreamError

_TYPE_OF_STATUS = ERROR_TYPE_OF_STATUS | {422: "invalid_request_error"}
_RESET_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    failure = _classified(status, headers, body)
    if failure.failure_class is FailureClass.CALLER_FAULT and body.lstrip().startswith(b"{"):
        failure.native_body = ("anthropic", body)  # an Anthropic caller gets it as written
    return failure


def _classified(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    error = _error_fields(body)
    kind = error.get("type")
    if not isinstance(kind, str) or kind not in STATUS_OF_ERROR_TYPE:
        kind = _TYPE_OF_STATUS.get(status, "api_error" if status >= 500 else None)
    if kind in ("invalid_request_error", "request_too_large"):
        return UpstreamError(_message(error, status), failure_class=FailureClass.CALLER_FAULT,
                             upstream_status=status, http_status=400, status="INVALID_ARGUMENT")
    if kind == "authentication_error":
        return _failure("upstream credential rejected", FailureClass.CREDENTIAL, status, 503)
    if kind == "permission_error":
        return UpstreamError(_message(error, status), failure_class=FailureClass.CALLER_FAULT,
                             upstream_status=status, http_status=403, status="PERMISSION_DENIED")
    if kind == "billing_error" or _spend_limit(error):
        return _failure("upstream quota exhausted", FailureClass.QUOTA, status, 503)
    if kind == "rate_limit_error":
        return UpstreamError(
            "upstream rate limit reached", failure_class=FailureClass.RATE_LIMITED,
            upstream_status=status, http_status=429, status="RESOURCE_EXHAUSTED",
            retry_after=retry_after(headers),
        )
    if kind == "timeout_error":
        return _failure("upstream timed out", FailureClass.TRANSIENT, status, 504,
                        "DEADLINE_EXCEEDED")
    if kind in ("api_error", "overloaded_error"):
        return UpstreamError(
            f"upstream unavailable (HTTP {status})", failure_class=FailureClass.TRANSIENT,
            upstream_status=status, http_status=503, status="UNAVAILABLE",
            retry_after=retry_after(headers),
        )
    # An unknown model or route means the gateway's configuration is wrong, not the request.
    return _failure(f"upstream failed (HTTP {status})", FailureClass.UNKNOWN, status, 502)


def classify_stream_error(event: Mapping[str, Any]) -> UpstreamError:
    """An `error` event after the 200: the status is the one Anthropic documents for the
    error's type (an overloaded_error mid-stream is the 529 it would have answered)."""
    error = event.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    status = STATUS_OF_ERROR_TYPE.get(kind, 500) if isinstance(kind, str) else 500
    return classify_error(status, {}, orjson.dumps(dict(event)))


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait: `retry-after` (seconds or an HTTP date, RFC 9110) when present, else
    the latest `anthropic-ratelimit-*-reset` (RFC 3339) among the limits whose `-remaining` is
    0 — every exhausted limit must reset before a retry can pass — or, when none says it is
    exhausted, the earliest reset."""
    lowered = {key.lower(): value for key, value in headers.items()}
    moment = time.time() if now is None else now
    value = lowered.get("retry-after")
    wait = None if value is None else retry_after_value(value, now=moment)
    if wait is not None:
        return wait
    resets: list[tuple[bool, float]] = []
    for limit in _RESET_LIMITS:
        when = _rfc3339(lowered.get(f"anthropic-ratelimit-{limit}-reset"))
        if when is not None:
            exhausted = lowered.get(f"anthropic-ratelimit-{limit}-remaining", "").strip() == "0"
            wait = wait_until(when, now=moment)
            if wait is not None:
                resets.append((exhausted, wait))
    exhausted_waits = [wait for exhausted, wait in resets if exhausted]
    if exhausted_waits:
        return max(exhausted_waits)
    return min((wait for _, wait in resets), default=None)


def _rfc3339(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _spend_limit(error: Mapping[str, Any]) -> bool:
    details = error.get("details")
    return isinstance(details, dict) and details.get("error_code") == (
        "enforced_spend_limit_reached")


def _error_fields(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # A proxy in front (Cloudflare answers 413 itself) may send HTML: keep a snippet.
        return {"message": body.decode("utf-8", "replace").strip()}
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}



