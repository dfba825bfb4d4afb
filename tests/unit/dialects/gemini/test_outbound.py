"""Reading a Gemini upstream's answers: error classification from Google's structured fields,
usage, streamed errors, and byte-exact stream framing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.canonical import Usage
from cometgate.dialects.gemini.upstream_errors import (
    JsonArrayElements,
    classify_error,
    read_error,
    stream_error_event,
    usage_from_event,
    usage_from_response,
)
from cometgate.dialects.sse_split import SSEEventSplitter, event_payload
from cometgate.errors import FailureClass

RPC = "type.googleapis.com/google.rpc."


def envelope(code: int, status: str, message: str = "m", *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error}, option=orjson.OPT_INDENT_2)


API_KEY_INVALID = {"@type": RPC + "ErrorInfo", "reason": "API_KEY_INVALID",
                   "domain": "googleapis.com"}
BAD_REQUEST = {"@type": RPC + "BadRequest", "fieldViolations": [
    {"field": "generation_config.top_k", "description": "Invalid value"}]}


def reason(name: str) -> dict[str, Any]:
    return {"@type": RPC + "ErrorInfo", "reason": name, "domain": "googleapis.com"}


def quota(quota_id: str) -> dict[str, Any]:
    return {"@type": RPC + "QuotaFailure", "violations": [{"quotaId": quota_id}]}


def retry(delay: object) -> dict[str, Any]:
    return {"@type": RPC + "RetryInfo", "retryDelay": delay}


def resource(kind: str, name: str) -> dict[str, Any]:
    return {"@type": RPC + "ResourceInfo", "resourceType": kind, "resourceName": name}


# --- classify_error ---------------------------------------------------------------------------

CASES: list[tuple[str, int, bytes, FailureClass, int, str]] = [
    ("bad argument", 400, envelope(400, "INVALID_ARGUMENT", "Unknown name \"x\"", BAD_REQUEST),
     FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    # A file still processing is the caller's; a billing problem would name a reason.
    ("failed precondition", 400, envelope(400, "FAILED_PRECONDITION", "File not ACTIVE"),
     FailureClass.CALLER_FAULT, 400, "FAILED_PRECONDITION"),
    ("billing disabled", 403, envelope(403, "PERMISSION_DENIED", "m", reason("BILLING_DISABLED")),
     FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    ("out of range", 400, envelope(400, "OUT_OF_RANGE"),
     FailureClass.CALLER_FAULT, 400, "OUT_OF_RANGE"),
    ("a file the request names", 404,
     envelope(404, "NOT_FOUND", "File gone", resource("file", "files/abc")),
     FailureClass.CALLER_FAULT, 404, "NOT_FOUND"),
    ("api key invalid", 400, envelope(400, "INVALID_ARGUMENT", "API key not valid.",
                                      API_KEY_INVALID),
     FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    ("unauthenticated", 401, envelope(401, "UNAUTHENTICATED"),
     FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    # A file or cache this caller may not read: theirs to hear, not a reason to rest the key.
    ("permission denied", 403, envelope(403, "PERMISSION_DENIED", "no access to files/x"),
     FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),
    ("permission denied, message only", 403,
     envelope(403, "PERMISSION_DENIED", "API key not valid. SERVICE_DISABLED"),
     FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),  # never from message text
    ("html 403", 403, b"<html>Forbidden</html>", FailureClass.CALLER_FAULT, 403,
     "PERMISSION_DENIED"),
    *[(f"reason {name}", 403, envelope(403, "PERMISSION_DENIED", "m", reason(name)),
       FailureClass.CREDENTIAL, 503, "UNAVAILABLE")
      for name in ("SERVICE_DISABLED", "CONSUMER_SUSPENDED", "API_KEY_SERVICE_BLOCKED",
                   "API_KEY_IP_ADDRESS_BLOCKED", "ACCESS_TOKEN_SCOPE_INSUFFICIENT")],
    ("api key expired", 400, envelope(400, "INVALID_ARGUMENT", "m", reason("API_KEY_EXPIRED")),
     FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    ("a reason that is not a string", 403, envelope(403, "PERMISSION_DENIED", "m", {
        "@type": RPC + "ErrorInfo", "reason": ["API_KEY_INVALID"]}),
     FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),
    ("another reason", 403,
     envelope(403, "PERMISSION_DENIED", "m", reason("IAM_PERMISSION_DENIED")),
     FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),
    ("per-minute limit", 429, envelope(429, "RESOURCE_EXHAUSTED", "q",
                                       quota("GenerateRequestsPerMinutePerProjectPerModel")),
     FailureClass.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
    ("per-day quota", 429, envelope(429, "RESOURCE_EXHAUSTED", "q",
                                    quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier")),
     FailureClass.QUOTA, 503, "UNAVAILABLE"),
    ("prepaid credit spent", 402, envelope(402, "RESOURCE_EXHAUSTED"),
     FailureClass.QUOTA, 503, "UNAVAILABLE"),
    ("unknown model", 404, envelope(404, "NOT_FOUND", "models/x is not found"),
     FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    ("unknown model named", 404,
     envelope(404, "NOT_FOUND", "nf", resource("model", "models/x")),
     FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    ("internal", 500, envelope(500, "INTERNAL"), FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("overloaded", 503, envelope(503, "UNAVAILABLE", "The model is overloaded."),
     FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("deadline", 504, envelope(504, "DEADLINE_EXCEEDED"),
     FailureClass.TRANSIENT, 504, "DEADLINE_EXCEEDED"),
    ("html 502 page", 502, b"<html><body>502 Bad Gateway</body></html>",
     FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("empty 500", 500, b"", FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("html 429", 429, b"<html>Too Many</html>",
     FailureClass.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
    ("html 401", 401, b"<html>no</html>", FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    ("plain 400", 400, b"bad request", FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    ("408", 408, b"", FailureClass.TRANSIENT, 504, "DEADLINE_EXCEEDED"),
    ("already exists", 409, envelope(409, "ALREADY_EXISTS"),
     FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    ("unimplemented", 501, envelope(501, "UNIMPLEMENTED"),
     FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    ("a redirect", 301, b"<html>moved</html>", FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    ("wrapped in an array", 400,
     b"[" + envelope(400, "INVALID_ARGUMENT", "wrapped") + b"]",
     FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    ("flat envelope", 400,
     orjson.dumps({"code": 400, "message": "flat", "status": "INVALID_ARGUMENT"}),
     FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    ("another gateway's envelope", 401,
     orjson.dumps({"error": {"code": "", "message": "bad key", "type": "comet_api_error"}}),
     FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
]


@pytest.mark.parametrize(("status", "body", "failure", "http", "rpc"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_classify_error(status: int, body: bytes, failure: FailureClass, http: int,
                        rpc: str) -> None:
    error = classify_error(status, {}, body)
    assert (error.failure_class, error.http_status, error.status) == (failure, http, rpc)
    assert error.upstream_status == status


def test_caller_faults_keep_the_upstream_message() -> None:
    body = envelope(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name",
                    BAD_REQUEST)
    assert classify_error(400, {}, body).message == "Invalid JSON payload received. Unknown name"
    assert classify_error(400, {}, b"<html/>").message == (
        "the upstream rejected the request (HTTP 400)")


def test_the_gateways_own_faults_do_not_leak_the_upstream_message() -> None:
    body = envelope(400, "INVALID_ARGUMENT", "API key not valid. AIza-secret", API_KEY_INVALID)
    assert "AIza" not in classify_error(400, {}, body).message
    quota_body = envelope(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, "
                          "check your plan and billing details")
    assert "billing" not in classify_error(429, {}, quota_body).message


@pytest.mark.parametrize(("details", "headers", "expected"), [
    ([retry("43s")], {}, 43.0),
    ([retry("1.5s")], {"Retry-After": "9"}, 1.5),  # RetryInfo is finer and wins
    ([retry("soon")], {"retry-after": "9"}, 9.0),
    ([retry("-3s")], {}, None),
    ([retry("nans")], {}, None),
    ([retry("infs")], {}, None),
    ([retry("99999999s")], {"Retry-After": "4"}, 4.0),  # no multi-year rest: the header
    ([retry(4)], {}, None),  # a Duration is a string in JSON
    ([], {"Retry-After": "nan"}, None),  # once read as a NaN-second rest
    ([], {"Retry-After": "7"}, 7.0),
    ([], {"Retry-After": "later"}, None),
    ([], {}, None),
])
def test_retry_delay(details: list[dict[str, Any]], headers: dict[str, str],
                     expected: float | None) -> None:
    error = classify_error(429, headers, envelope(429, "RESOURCE_EXHAUSTED", "q", *details))
    assert error.failure_class is FailureClass.RATE_LIMITED
    assert error.retry_after == expected


def test_read_error_fields() -> None:
    error = read_error(429, envelope(429, "RESOURCE_EXHAUSTED", "q", retry("2s"), quota("x")))
    assert error.status == "RESOURCE_EXHAUSTED" and error.message == "q"
    assert [d["retryDelay"] for d in error.details_of("RetryInfo")] == ["2s"]
    assert len(error.details_of("QuotaFailure")) == 1
    odd = read_error(500, orjson.dumps({"error": {"status": "NOT_A_CODE", "message": 5,
                                                  "details": "x"}}))
    assert (odd.status, odd.message, odd.details) == ("INTERNAL", "", ())


# --- usage ----------------------------------------------------------------------------------


def test_usage_from_response() -> None:
    body = orjson.dumps({"candidates": [], "usageMetadata": {
        "promptTokenCount": 28, "candidatesTokenCount": 643, "thoughtsTokenCount": 1174,
        "cachedContentTokenCount": 20, "totalTokenCount": 1845}})
    usage = usage_from_response(body)
    assert usage == Usage(prompt_tokens=28, output_tokens=643, thoughts_tokens=1174,
                          cached_tokens=20)
    assert usage.total_tokens == 1845


def test_tool_use_prompt_counts_as_prompt() -> None:
    body = orjson.dumps({"usageMetadata": {"promptTokenCount": 10, "toolUsePromptTokenCount": 5,
                                           "candidatesTokenCount": 3, "totalTokenCount": 18}})
    usage = usage_from_response(body)
    assert usage == Usage(prompt_tokens=15, output_tokens=3)
    assert usage.total_tokens == 18


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"candidates":[]}', None),
    (b'{"usageMetadata":{}}', Usage()),
    (b'{"usageMetadata":{"promptTokenCount":4.0,"candidatesTokenCount":true,'
     b'"thoughtsTokenCount":-2,"cachedContentTokenCount":"3"}}', Usage(prompt_tokens=4)),
    (b'{"usageMetadata":[1]}', None),
    (b"not json", None),
    (b"", None),
    (b'[{"usageMetadata":{"promptTokenCount":1}},{"usageMetadata":{"promptTokenCount":2,'
     b'"candidatesTokenCount":5}},{"candidates":[]}]', Usage(prompt_tokens=2, output_tokens=5)),
    (b"[]", None),
])
def test_usage_from_odd_bodies(body: bytes, expected: Usage | None) -> None:
    assert usage_from_response(body) == expected


def test_usage_from_event() -> None:
    event = (b'data: {"candidates":[],"usageMetadata":{"promptTokenCount":8,'
             b'"candidatesTokenCount":2}}\r\n\r\n')
    assert usage_from_event(event) == Usage(prompt_tokens=8, output_tokens=2)
    assert usage_from_event(b'data: {"candidates":[]}\n\n') is None
    # An event that does not mention usage is not parsed at all, even when it is not JSON.
    assert usage_from_event(b"data: {broken\n\n") is None
    split = b'data: {"usageMetadata":\ndata: {"promptTokenCount":3}}\n\n'
    assert usage_from_event(split) == Usage(prompt_tokens=3)


def test_event_payload() -> None:
    assert event_payload(b"data: {}\r\n\r\n") == b"{}"
    assert event_payload(b"data:{}\n\n") == b"{}"
    assert event_payload(b"data: [1,\ndata: 2]\n\n") == b"[1,\n2]"
    assert event_payload(b'\n{\n  "error": {}\n}\n') == b'{\n  "error": {}\n}'


# --- errors inside a stream -----------------------------------------------------------------


def test_a_data_error_event() -> None:
    event = (b'data: {"error":{"code":503,"message":"The model is overloaded.",'
             b'"status":"UNAVAILABLE"}}\r\n\r\n')
    error = stream_error_event(event)
    assert error is not None
    assert (error.failure_class, error.upstream_status) == (FailureClass.TRANSIENT, 503)


def test_a_raw_pretty_printed_error_outside_sse_framing() -> None:
    raw = envelope(429, "RESOURCE_EXHAUSTED", "quota", quota("PerDayQuota"))
    error = stream_error_event(b"\n" + raw + b"\n")
    assert error is not None and error.failure_class is FailureClass.QUOTA


@pytest.mark.parametrize(("event", "failure", "upstream"), [
    (b'data: {"error":{"message":"x","status":"INVALID_ARGUMENT"}}\n\n',
     FailureClass.CALLER_FAULT, 400),
    (b'data: {"error":{"code":"invalid_request","message":"x"}}\n\n',
     FailureClass.TRANSIENT, 500),
    (b'data: {"error":{"code":200,"message":"x","status":"RESOURCE_EXHAUSTED"}}\n\n',
     FailureClass.RATE_LIMITED, 429),
    (b'[{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT"}}]',
     FailureClass.CALLER_FAULT, 400),
])
def test_error_events_without_a_usable_code(event: bytes, failure: FailureClass,
                                           upstream: int) -> None:
    error = stream_error_event(event)
    assert error is not None
    assert (error.failure_class, error.upstream_status) == (failure, upstream)


@pytest.mark.parametrize("event", [
    b'data: {"candidates":[{"content":{"parts":[{"text":"an \\"error\\" here"}]}}]}\n\n',
    b'data: {"candidates":[],"finishMessage":"error","x":"error"}\n\n',
    b'data: {"error": "just text"}\n\n',
    b"data: not json but \"error\"\n\n",
    b"",
])
def test_ordinary_events_are_not_errors(event: bytes) -> None:
    assert stream_error_event(event) is None


# --- SSE event splitting --------------------------------------------------------------------

EVENTS = [b'data: {"a":1}\r\n\r\n', b'data: {"b":"x\\ny"}\n\n', b'data: {"c":3}\r\r',
          b'data: {"d":4}\r\n\n', b'data: {"e":5}\n\r\n', b'data: {"f":6}\r\r\n']


def test_events_are_cut_at_every_kind_of_blank_line() -> None:
    splitter = SSEEventSplitter()
    assert splitter.feed(b"".join(EVENTS)) == EVENTS
    assert splitter.close() == b""


@pytest.mark.parametrize("cut", range(1, 30))
def test_events_cut_anywhere_come_out_whole(cut: int) -> None:
    body = b"".join(EVENTS)
    splitter = SSEEventSplitter()
    out: list[bytes] = []
    for start in range(0, len(body), cut):
        out.extend(splitter.feed(body[start:start + cut]))
    assert out == EVENTS
    assert splitter.close() == b""


def test_a_crlf_split_after_the_cr_is_waited_for() -> None:
    splitter = SSEEventSplitter()
    assert splitter.feed(b"data: 1\r\n\r") == []
    assert splitter.feed(b"\ndata: 2\n\n") == [b"data: 1\r\n\r\n", b"data: 2\n\n"]


def test_a_single_line_end_is_not_an_event_end() -> None:
    splitter = SSEEventSplitter()
    assert splitter.feed(b"data: 1\r\n") == []
    assert splitter.feed(b"data: 2\r\n") == []
    assert splitter.feed(b"\r\n") == [b"data: 1\r\ndata: 2\r\n\r\n"]


def test_what_trails_the_last_event_is_kept() -> None:
    splitter = SSEEventSplitter()
    raw_error = b'{\n  "error": {"code": 429}\n}\n'
    assert splitter.feed(b"data: 1\n\n" + raw_error) == [b"data: 1\n\n"]
    assert splitter.close() == raw_error
    assert splitter.close() == b""


# --- JSON-array elements --------------------------------------------------------------------

ELEMENTS = [
    b'{\n  "candidates": [{"content": {"parts": [{"text": "a } ] { [ b"}]}}],\n  "n": 1\n}',
    b'{"text": "quote \\" and backslash \\\\", "list": [[1, 2], {"x": []}]}',
    b'{"empty": {}, "s": "\\\\\\""}',
]
ARRAY = b"[" + b",\r\n".join(ELEMENTS) + b"]"


def test_array_elements_are_found() -> None:
    assert JsonArrayElements().feed(ARRAY) == ELEMENTS


@pytest.mark.parametrize("cut", range(1, 24))
def test_array_elements_cut_anywhere_come_out_whole(cut: int) -> None:
    elements = JsonArrayElements()
    out: list[bytes] = []
    for start in range(0, len(ARRAY), cut):
        out.extend(elements.feed(ARRAY[start:start + cut]))
    assert out == ELEMENTS
    assert [orjson.loads(element) for element in out]


def test_array_elements_are_reported_by_the_piece_that_completes_them() -> None:
    elements = JsonArrayElements()
    assert elements.feed(b'[{"a": "}') == []
    assert elements.feed(b'"}') == [b'{"a": "}"}']
    assert elements.feed(b",\r\n") == []
    assert elements.feed(b'{"b": 2}]') == [b'{"b": 2}']
