"""Anthropic error envelopes → classified UpstreamErrors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from cometgate.dialects.anthropic.upstream_errors import classify_error, retry_after
from cometgate.errors import FailureClass

WIRE = Path(__file__).parents[3] / "wire" / "anthropic"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (WIRE / name).read_bytes()


@pytest.mark.parametrize(("name", "status", "failure", "http_status", "rpc"), [
    ("invalid_request", 400, FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    ("request_too_large", 413, FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    ("authentication", 401, FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    # what this request names is not the key's to use: the caller's fault, not the key's
    ("permission", 403, FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),
    ("billing", 402, FailureClass.QUOTA, 503, "UNAVAILABLE"),
    ("rate_limit", 429, FailureClass.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
    ("not_found", 404, FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    ("api_error", 500, FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("overloaded", 529, FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
])
def test_documented_errors(name: str, status: int, failure: FailureClass, http_status: int,
                           rpc: str) -> None:
    error = classify_error(status, {}, fixture(f"error_{name}.json"))
    assert error.failure_class is failure
    assert (error.http_status, error.status, error.upstream_status) == (http_status, rpc, status)


@pytest.mark.parametrize(("status", "body", "failure"), [
    (401, b'{"type":"error","error":{"type":"authentication_error","message":"x"}}',
     FailureClass.CREDENTIAL),
    (401, b"<html>401</html>", FailureClass.CREDENTIAL),  # a 401 is only ever the key
    (403, b"<html>forbidden</html>", FailureClass.CALLER_FAULT),
    (401, b'{"type":"error","error":{"type":["permission_error"]}}', FailureClass.CREDENTIAL),
    (403, b'{"type":"error","error":{"type":"permission_error","message":"invalid x-api-key"}}',
     FailureClass.CALLER_FAULT),  # never from the message text
])
def test_only_authentication_errors_rest_the_key(status: int, body: bytes,
                                                 failure: FailureClass) -> None:
    assert classify_error(status, {}, body).failure_class is failure


def test_caller_fault_shows_the_upstream_message_other_faults_do_not() -> None:
    caller = classify_error(400, {}, fixture("error_invalid_request.json"))
    assert caller.message.startswith("messages: roles must alternate")
    credential = classify_error(401, {}, fixture("error_authentication.json"))
    assert "x-api-key" not in credential.message


def test_type_decides_over_status() -> None:
    # Anthropic may use invalid_request_error for 4xx statuses it does not list.
    body = b'{"type":"error","error":{"type":"invalid_request_error","message":"m"}}'
    assert classify_error(409, {}, body).failure_class is FailureClass.CALLER_FAULT
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"m"}}'
    assert classify_error(400, {}, body).failure_class is FailureClass.TRANSIENT


@pytest.mark.parametrize(("status", "failure"), [
    (400, FailureClass.CALLER_FAULT), (422, FailureClass.CALLER_FAULT),
    (401, FailureClass.CREDENTIAL), (429, FailureClass.RATE_LIMITED),
    (502, FailureClass.TRANSIENT), (529, FailureClass.TRANSIENT), (418, FailureClass.UNKNOWN),
])
def test_unknown_type_or_non_json_falls_back_to_status(status: int,
                                                       failure: FailureClass) -> None:
    assert classify_error(status, {}, b"<html>bad gateway</html>").failure_class is failure
    new_type = b'{"type":"error","error":{"type":"shiny_new_error","message":"m"}}'
    assert classify_error(status, {}, new_type).failure_class is failure


def test_timeout_error_is_a_deadline() -> None:
    body = b'{"type":"error","error":{"type":"timeout_error","message":"Request timed out"}}'
    error = classify_error(504, {}, body)
    assert error.failure_class is FailureClass.TRANSIENT
    assert (error.http_status, error.status) == (504, "DEADLINE_EXCEEDED")


def test_spend_limit_is_quota_not_rate_limit() -> None:
    body = (b'{"type":"error","error":{"type":"rate_limit_error","message":"m",'
            b'"details":{"error_code":"enforced_spend_limit_reached"}}}')
    assert classify_error(429, {}, body).failure_class is FailureClass.QUOTA


def test_rate_limit_carries_retry_after() -> None:
    error = classify_error(429, {"Retry-After": "17"}, fixture("error_rate_limit.json"))
    assert error.retry_after == 17.0


def test_retry_after_forms() -> None:
    now = NOW.timestamp()
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": later}, now=now) == 30.0
    assert retry_after({"retry-after": "soon"}, now=now) is None
    assert retry_after({"retry-after": "nan"}, now=now) is None
    assert retry_after({}, now=now) is None


def test_retry_after_from_anthropic_reset_headers() -> None:
    now = NOW.timestamp()
    headers = {
        "anthropic-ratelimit-requests-remaining": "12",
        "anthropic-ratelimit-requests-reset": "2025-06-01T12:00:05Z",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2025-06-01T12:00:20Z",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2025-06-01T12:00:40Z",
    }
    assert retry_after(headers, now=now) == 40.0  # every exhausted limit must reset first
    not_exhausted = {k: v for k, v in headers.items() if "output" not in k and "input" not in k}
    assert retry_after(not_exhausted, now=now) == 5.0
    assert retry_after({"anthropic-ratelimit-tokens-reset": "yesterday"}, now=now) is None
    assert retry_after({"Retry-After": "3", **headers}, now=now) == 3.0
    # A reset years away is no wait: the one parser's bound applies to reset times too.
    far = {"anthropic-ratelimit-tokens-remaining": "0",
           "anthropic-ratelimit-tokens-reset": "2099-01-01T00:00:00Z"}
    assert retry_after(far, now=now) is None
    assert retry_after({**far, "retry-after": "1e9"}, now=now) is None
