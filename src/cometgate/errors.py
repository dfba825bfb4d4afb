"""The gateway's exception tree. Every failure is one of these by the time it reaches an edge,
where the caller's dialect renders it (Gemini: `{"error":{"code","message","status"}}`).

    GatewayError                     .http_status, .status (google.rpc code name), .message
      RequestRejected                caller's fault, never retried
        InvalidRequest        400    INVALID_ARGUMENT   (.violations: field → description)
          FailedPrecondition  400    FAILED_PRECONDITION (a resource not ready for this use)
          ApiKeyInvalid       400    INVALID_ARGUMENT   (Google answers a bad key with 400)
            ApiKeyExpired     400    INVALID_ARGUMENT   (and an expired one alike)
        Unauthenticated       401    UNAUTHENTICATED
        PermissionDenied      403    PERMISSION_DENIED
          KeyMissing          403    PERMISSION_DENIED  (Google's answer to a request without a key)
        NotFound              404    NOT_FOUND
        AlreadyExists         409    ALREADY_EXISTS     (a name chosen by the caller is taken)
        RequestTimeout        408    DEADLINE_EXCEEDED  (the request's head or body came too slowly)
        MethodNotAllowed      405    UNIMPLEMENTED      (.allow: the methods the path takes)
        PayloadTooLarge       413    INVALID_ARGUMENT   (Google's front end answers 413)
        HeadersTooLarge       431    INVALID_ARGUMENT   (header fields too large or too many)
        RateLimited           429    RESOURCE_EXHAUSTED (.retry_after seconds)
        BudgetExhausted       429    RESOURCE_EXHAUSTED (.retry_after: period's end, or None)
        CallerGone            499    CANCELLED          (the caller hung up; nobody hears it)
      UpstreamError                  .failure_class, .upstream_status
        UpstreamUnavailable   503    UNAVAILABLE        (nothing could answer; retry later)
        UpstreamTimeout       504    DEADLINE_EXCEEDED
      InternalError           500    INTERNAL

Failure classes drive failover; outbound codecs derive them from structured error fields,
transports from exception types, never from message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class FailureClass(StrEnum):
    TRANSIENT = "transient"  # worth retrying the same target
    RATE_LIMITED = "rate_limited"
    CREDENTIAL = "credential"
    QUOTA = "quota"
    CALLER_FAULT = "caller_fault"  # the upstream rejected the request itself
    UNKNOWN = "unknown"


class GatewayError(Exception):
    http_status: int = 500
    status: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestRejected(GatewayError):
    pass


class InvalidRequest(RequestRejected):
    """`code`: a machine-readable reason, for dialects whose errors carry one (OpenAI's
    `error.code`, e.g. "context_length_exceeded")."""

    http_status = 400
    status = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, violations: Mapping[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.violations = dict(violations or {})
        self.code = code


class FailedPrecondition(InvalidRequest):
    status = "FAILED_PRECONDITION"


class ApiKeyInvalid(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("API key not valid. Please pass a valid API key.")


class ApiKeyExpired(ApiKeyInvalid):
    def __init__(self) -> None:
        InvalidRequest.__init__(self, "API key expired. Please renew the API key.")


class Unauthenticated(RequestRejected):
    http_status = 401
    status = "UNAUTHENTICATED"


class PermissionDenied(RequestRejected):
    http_status = 403
    status = "PERMISSION_DENIED"


class KeyMissing(PermissionDenied):
    """No API key was presented. Google answers 403; the OpenAI and Anthropic dialects answer
    401, so their encoders need to tell this apart from a key that lacks a permission."""

    def __init__(self) -> None:
        super().__init__(
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )


class NotFound(RequestRejected):
    http_status = 404
    status = "NOT_FOUND"


class AlreadyExists(RequestRejected):
    http_status = 409
    status = "ALREADY_EXISTS"


class PayloadTooLarge(RequestRejected):
    http_status = 413
    status = "INVALID_ARGUMENT"


class MethodNotAllowed(RequestRejected):
    """Rendered with an `Allow` header naming `allow`, as RFC 9110 requires of a 405."""

    http_status = 405
    status = "UNIMPLEMENTED"

    def __init__(self, message: str, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class RequestTimeout(RequestRejected):
    http_status = 408
    status = "DEADLINE_EXCEEDED"


class HeadersTooLarge(RequestRejected):
    http_status = 431
    status = "INVALID_ARGUMENT"


class RateLimited(RequestRejected):
    http_status = 429
    status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExhausted(RequestRejected):
    """The key's budget (total or this period's) cannot cover the request's worst-case cost.
    `retry_after` is the time to the period's end; None for a total budget, which never renews.
    """

    http_status = 429
    status = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CallerGone(RequestRejected):
    """The caller closed the connection before its answer: nobody is there to answer, and it
    is not the gateway's failure (499, nginx's convention)."""

    http_status = 499
    status = "CANCELLED"

    def __init__(
        self, message: str = "The client closed the connection before the answer was ready."
    ) -> None:
        super().__init__(message)


class UpstreamError(GatewayError):
    """An upstream failed. `http_status`/`status` are what the caller sees."""

    def __init__(
        self,
        message: str,
        *,
        failure_class: FailureClass,
        upstream_status: int | None = None,
        http_status: int | None = None,
        status: str | None = None,
        retry_after: float | None = None,
        prompt_too_long: bool = False,
    ) -> None:
        super().__init__(message)
        self.failure_class = failure_class
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        # The upstream said, in a structured field, that the prompt is over its context.
        self.prompt_too_long = prompt_too_long
        # (dialect, body): the upstream's own error answer, which a caller of that same dialect
        # receives verbatim (pass-through), details and all.
        self.native_body: tuple[str, bytes] | None = None
        if http_status is not None:
            self.http_status = http_status
        if status is not None:
            self.status = status


class UpstreamUnavailable(UpstreamError):
    http_status = 503
    status = "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(
            message, failure_class=FailureClass.TRANSIENT, retry_after=retry_after
        )


class UpstreamTimeout(UpstreamError):
    http_status = 504
    status = "DEADLINE_EXCEEDED"

    def __init__(self, message: str) -> None:
        super().__init__(message, failure_class=FailureClass.TRANSIENT)


class InternalError(GatewayError):
    http_status = 500
    status = "INTERNAL"
