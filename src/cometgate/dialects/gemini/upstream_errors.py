"""Reading a Gemini upstream's answers without re-encoding them: the failure an error answer
means, the usage an answer reports, and where one streamed response ends.

Same-dialect pass-through forwards the upstream's bytes to the caller unchanged, so nothing
here builds a body; it only reads the few fields the gateway acts on (usageMetadata, the
error envelope) and leaves the rest alone.

Failure classes come from Google's structured fields only (error.status, the HTTP status,
`google.rpc.ErrorInfo.reason`, `google.rpc.QuotaFailure`, `google.rpc.ResourceInfo`,
`google.rpc.RetryInfo`, the Retry-After header), never from message text.

Named for its main role (error answers → failure, which every Gemini-facing provider imports).
The usage reads and the JSON-array stream splitting stay here too: they read a relayed answer
the way the error path does (one lenient JSON parse of the event's payload), and each is too
small to stand as a module of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.canonical import Usage
from cometgate.dialects.retry_after import duration_seconds, header_wait
from cometgate.dialects.sse_split import event_payload
from cometgate.dialects.upstream_answers import answer_object, unreadable
from cometgate.errors import FailureClass, UpstreamError

_TYPE_PREFIX = "type.googleapis.com/google.rpc."

# google.rpc.Code names and their HTTP statuses, as Google's REST front end maps them.
_HTTP_BY_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499,
    "UNKNOWN": 500, "INTERNAL": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
_STATUS_BY_HTTP = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED",
    413: "INVALID_ARGUMENT", 422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CALLER_STATUSES = frozenset({"INVALID_ARGUMENT", "OUT_OF_RANGE", "FAILED_PRECONDITION",
                              "PERMISSION_DENIED"})
# ErrorInfo reasons (google.api.ErrorReason, and the Gemini API's own) that say the key or the
# project behind it is refused, whatever the request: the operator's problem. Google answers a
# bad or expired key with 400 INVALID_ARGUMENT, a blocked or suspended one with 403
# PERMISSION_DENIED — the very statuses a caller's own bad request or unreadable resource (a
# fileUri, a cachedContent of another project) gets — so only the reason tells them apart.
_CREDENTIAL_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED",
    "API_KEY_ANDROID_APP_BLOCKED", "API_KEY_IOS_APP_BLOCKED", "SERVICE_DISABLED",
    "BILLING_DISABLED", "CONSUMER_SUSPENDED", "CONSUMER_INVALID", "USER_PROJECT_DENIED",
    "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "ACCESS_TOKEN_TYPE_UNSUPPORTED",
    "CREDENTIALS_MISSING", "ACCOUNT_STATE_INVALID", "GCP_SUSPENDED", "SERVICE_NOT_VISIBLE",
})
_TRANSIENT_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"})
_MODEL_PREFIXES = ("models/", "tunedModels/")


@dataclass(frozen=True, slots=True)
class GoogleError:
    """The fields of Google's error envelope. `status` is derived from the HTTP status when
    the body names none (an HTML page from a proxy, another gateway's envelope)."""

    http_status: int
    status: str
    message: str
    details: tuple[Mapping[str, Any], ...] = ()

    def details_of(self, type_name: str) -> list[Mapping[str, Any]]:
        """Detail entries of one google.rpc type, e.g. "RetryInfo"."""
        wanted = _TYPE_PREFIX + type_name
        return [detail for detail in self.details if detail.get("@type") == wanted]


def read_error(http_status: int, body: bytes) -> GoogleError:
    """Accepts `{"error":{…}}`, the same wrapped in a one-element array (other Google front
    ends), a flat `{"code","message","status"}`, or anything else (status from HTTP)."""
    fields = _error_fields(_loads(body))
    status = fields.get("status")
    if not isinstance(status, str) or status not in _HTTP_BY_STATUS:
        status = _status_for_http(http_status)
    message = fields.get("message")
    details = fields.get("details")
    return GoogleError(
        http_status=http_status,
        status=status,
        message=message if isinstance(message, str) else "",
        details=tuple(d for d in details if isinstance(d, dict))
        if isinstance(details, list) else (),
    )


def http_status_of(status: str) -> int:
    """The HTTP status Google's REST front end answers a google.rpc.Code name with."""
    return _HTTP_BY_STATUS.get(status, 500)


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    failure = _classified(status, headers, body)
    if failure.failure_class is FailureClass.CALLER_FAULT and body.lstrip().startswith(b"{"):
        failure.native_body = ("gemini", body)  # a Gemini caller gets Google's own answer
    return failure


def _classified(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """An upstream's error answer as the failure the pipeline acts on.

    - UNAUTHENTICATED (401: only the gateway's credential authenticates an upstream call),
      or an ErrorInfo reason that refuses the key or its project (API_KEY_INVALID,
      SERVICE_DISABLED, CONSUMER_SUSPENDED, …, whatever the status) → CREDENTIAL; the caller
      sees 503 UNAVAILABLE (the gateway's key is not theirs).
    - PERMISSION_DENIED (403) and FAILED_PRECONDITION without such a reason → CALLER_FAULT:
      what one caller may not read (a file, a cache of another project) or has not readied
      (a file still processing) must not rest the credential for every caller; they get the
      upstream's answer.
    - RESOURCE_EXHAUSTED (429, or 402 for spent prepaid credit) → QUOTA when the quota cannot
      come back within seconds: a 402, or a QuotaFailure violation whose quotaId counts per
      day ("…PerDay…"); the caller sees 503. Otherwise RATE_LIMITED: 429 RESOURCE_EXHAUSTED
      with RetryInfo.retryDelay, else Retry-After.
    - NOT_FOUND → CALLER_FAULT only when a ResourceInfo detail names something other than a
      model (a file, a cache the request refers to); otherwise the upstream model is unknown
      there, a configuration fault → UNKNOWN, 502.
    - INVALID_ARGUMENT, OUT_OF_RANGE (and 413) → CALLER_FAULT; the caller sees the
      upstream's error body unchanged (details such as field violations included).
    - UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ABORTED, 408 and any 5xx → TRANSIENT; the
      caller sees 503 UNAVAILABLE (504 DEADLINE_EXCEEDED for a deadline).
    - Anything else → UNKNOWN, 502.
    """
    error = read_error(status, body)
    if _is_credential_fault(error):
        return _failure("the upstream rejected the gateway's credential",
                        FailureClass.CREDENTIAL, status, 503, "UNAVAILABLE")
    if error.status == "RESOURCE_EXHAUSTED":
        return _exhausted(error, headers)
    if error.status == "NOT_FOUND" and not _names_request_resource(error):
        return _failure("the upstream does not know the configured model",
                        FailureClass.UNKNOWN, status, 502, "UNAVAILABLE")
    if error.status in _CALLER_STATUSES or error.status == "NOT_FOUND":
        return _caller_fault(error)
    if error.status in _TRANSIENT_STATUSES or status >= 500 or status == 408:
        if error.status == "DEADLINE_EXCEEDED":
            return _failure("the upstream timed out", FailureClass.TRANSIENT, status, 504,
                            "DEADLINE_EXCEEDED")
        return _failure(f"the upstream is unavailable (HTTP {status})",
                        FailureClass.TRANSIENT, status, 503, "UNAVAILABLE")
    return _failure(f"the upstream failed (HTTP {status})", FailureClass.UNKNOWN, status, 502,
                    "UNAVAILABLE")


def usage_from_response(body: bytes) -> Usage | None:
    """Usage of a whole answer: a GenerateContentResponse, or a JSON-array stream read whole
    (the last element that reports usage holds the final totals)."""
    document = _loads(body)
    if isinstance(document, list):
        for element in reversed(document):
            usage = usage_of(element)
            if usage is not None:
                return usage
        return None
    return usage_of(document)


def usage_of_forwarded(body: bytes, method: str) -> Usage | None:
    """Usage of a whole 2xx answer relayed to a Gemini caller as it came. A body that is no
    answer at all — not JSON, not an object, or a generateContent answer with neither
    candidates nor promptFeedback (a blocked prompt's answer) — is the upstream's fault, and
    another candidate may answer: unreadable, rather than relayed."""
    document = answer_object(body)
    if method == "generateContent" and not (
            isinstance(document.get("candidates"), list) or "promptFeedback" in document):
        raise unreadable("the answer has neither candidates nor promptFeedback")
    return usage_of(document)


def check_first_event(data: bytes) -> None:
    """The first event of a stream relayed as it comes must be a JSON object (an answer chunk,
    or the upstream's own error): anything else means the upstream is broken, and as nothing
    has reached the caller yet another candidate may answer."""
    if not isinstance(_loads(event_payload(data)), dict):
        raise unreadable("the stream's first event is not a JSON object")


def usage_from_event(data: bytes) -> Usage | None:
    """Running usage of one SSE event (its raw bytes, `data: ` prefix and blank line
    included). Events without usageMetadata are not parsed at all."""
    if b"usageMetadata" not in data:
        return None
    return usage_of(_loads(event_payload(data)))


def stream_error_event(data: bytes) -> UpstreamError | None:
    """The failure a streamed `{"error":{…}}` reports: as a `data:` event, as a raw
    pretty-printed object outside SSE framing, or as a JSON-array element. The caller still
    receives those bytes; this tells the pipeline that the stream failed."""
    if b'"error"' not in data:
        return None
    payload = event_payload(data)
    fields = _error_fields(_loads(payload))
    if not fields:
        return None
    code = fields.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        status = code
    else:
        named = fields.get("status")
        status = _HTTP_BY_STATUS.get(named, 500) if isinstance(named, str) else 500
    return classify_error(status, {}, payload)


# --- stream framing -------------------------------------------------------------------------

# A whole JSON string (skipped in C, whatever braces it holds), a bracket, or a lone quote:
# the start of a string whose end has not arrived yet.
_JSON_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[{}\[\]"]', re.DOTALL)


class JsonArrayElements:
    """Finds the complete top-level elements of a JSON array arriving in pieces (the framing
    of `streamGenerateContent` without `alt=sse`). Only strings and brackets are scanned, by
    a regular expression, so the cost is one pass over each byte in C; an element is held
    only until it is complete."""

    def __init__(self) -> None:
        self._pending = b""
        self._scanned = 0  # offset in _pending up to which depth is known
        self._depth = 0  # 1 inside the array, 2 and more inside an element
        self._element_start: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        elements: list[bytes] = []
        for token in _JSON_TOKEN.finditer(self._pending, self._scanned):
            text = token.group()
            if text == b'"':  # an unfinished string: wait for the rest of it
                self._scanned = token.start()
                break
            self._scanned = token.end()
            if text in (b"{", b"["):
                self._depth += 1
                if self._depth == 2:
                    self._element_start = token.start()
            elif text in (b"}", b"]"):
                self._depth -= 1
                if self._depth == 1 and self._element_start is not None:
                    elements.append(self._pending[self._element_start:token.end()])
                    self._element_start = None
        else:
            self._scanned = len(self._pending)
        self._discard_consumed()
        return elements

    def _discard_consumed(self) -> None:
        keep = self._element_start if self._element_start is not None else self._scanned
        self._pending = self._pending[keep:]
        self._scanned -= keep
        if self._element_start is not None:
            self._element_start = 0


# --- internals ------------------------------------------------------------------------------


def _loads(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _error_fields(document: object) -> Mapping[str, Any]:
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict):
        return {}
    error = document.get("error")
    if isinstance(error, dict):
        return error
    return document if "code" in document and "message" in document else {}


def _status_for_http(http_status: int) -> str:
    if http_status in _STATUS_BY_HTTP:
        return _STATUS_BY_HTTP[http_status]
    return "INTERNAL" if http_status >= 500 else "UNKNOWN"


def _is_credential_fault(error: GoogleError) -> bool:
    reasons = {reason for detail in error.details_of("ErrorInfo")
               if isinstance(reason := detail.get("reason"), str)}
    return (error.status == "UNAUTHENTICATED" or error.http_status == 401
            or not reasons.isdisjoint(_CREDENTIAL_REASONS))


def _exhausted(error: GoogleError, headers: Mapping[str, str]) -> UpstreamError:
    if error.http_status == 402 or _quota_is_daily(error):
        return _failure("the upstream quota is used up", FailureClass.QUOTA,
                        error.http_status, 503, "UNAVAILABLE")
    return UpstreamError(
        "the upstream rate limit was reached", failure_class=FailureClass.RATE_LIMITED,
        upstream_status=error.http_status, http_status=429, status="RESOURCE_EXHAUSTED",
        retry_after=_retry_info_delay(error) or header_wait(headers),
    )


def _quota_is_daily(error: GoogleError) -> bool:
    for failure in error.details_of("QuotaFailure"):
        violations = failure.get("violations")
        for violation in violations if isinstance(violations, list) else ():
            quota_id = violation.get("quotaId") if isinstance(violation, dict) else None
            if isinstance(quota_id, str) and "perday" in quota_id.lower():
                return True
    return False


def _names_request_resource(error: GoogleError) -> bool:
    for info in error.details_of("ResourceInfo"):
        name, kind = info.get("resourceName"), info.get("resourceType")
        is_model = (isinstance(name, str) and name.startswith(_MODEL_PREFIXES)) or (
            isinstance(kind, str) and "model" in kind.lower())
        if not is_model:
            return True
    return False


def _caller_fault(error: GoogleError) -> UpstreamError:
    http_status = error.http_status
    if not 400 <= http_status <= 499:
        http_status = _HTTP_BY_STATUS.get(error.status, 400)
    message = error.message or f"the upstream rejected the request (HTTP {error.http_status})"
    return UpstreamError(message, failure_class=FailureClass.CALLER_FAULT,
                         upstream_status=error.http_status, http_status=http_status,
                         status=error.status)


def _failure(message: str, failure_class: FailureClass, upstream_status: int,
             http_status: int, status: str) -> UpstreamError:
    return UpstreamError(message, failure_class=failure_class, upstream_status=upstream_status,
                         http_status=http_status, status=status)


def _retry_info_delay(error: GoogleError) -> float | None:
    for info in error.details_of("RetryInfo"):
        seconds = duration_seconds(info.get("retryDelay"))
        if seconds is not None:
            return seconds
    return None


def usage_of(document: object) -> Usage | None:
    """What one GenerateContentResponse (or stream chunk) reports; None without usage."""
    if not isinstance(document, dict):
        return None
    metadata = document.get("usageMetadata")
    if not isinstance(metadata, dict):
        return None
    # Tool-use prompts (search results fed back to the model) are input the upstream counts
    # in totalTokenCount, so they count as prompt here: total_tokens then matches Google's.
    return Usage(
        prompt_tokens=_count(metadata, "promptTokenCount")
        + _count(metadata, "toolUsePromptTokenCount"),
        output_tokens=_count(metadata, "candidatesTokenCount"),
        thoughts_tokens=_count(metadata, "thoughtsTokenCount"),
        cached_tokens=_count(metadata, "cachedContentTokenCount"),
        searches=1 if _searched(document) else 0,
    )


def _searched(document: Mapping[str, Any]) -> bool:
    """Whether Google Search grounded this answer: a candidate's groundingMetadata names the
    queries it ran or the search entry point it must show. Google bills grounding per prompt,
    not per candidate or query. In a stream it comes in the chunk that ends the candidate,
    which also carries the final usageMetadata."""
    candidates = document.get("candidates")
    if not isinstance(candidates, list):
        return False
    for candidate in candidates:
        grounding = candidate.get("groundingMetadata") if isinstance(candidate, dict) else None
        if isinstance(grounding, dict) and (
            grounding.get("webSearchQueries") or grounding.get("searchEntryPoint")
        ):
            return True
    return False


def _count(metadata: Mapping[str, Any], key: str) -> int:
    # proto3 JSON omits zero counts; a count is never negative.
    value = metadata.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
