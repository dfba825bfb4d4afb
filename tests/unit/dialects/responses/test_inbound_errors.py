"""How a Responses stream that broke says why: the error event's fields and the failed
Response's error."""

from __future__ import annotations

from cometgate.dialects.responses.caller_errors import error_event_fields, response_error
from cometgate.errors import FailureClass, RateLimited, UpstreamError, UpstreamUnavailable


def test_a_gateway_error_in_openais_words() -> None:
    error = UpstreamUnavailable("nothing could answer")
    assert error_event_fields(error) == {"code": "service_unavailable_error",
                                         "message": "nothing could answer", "param": None}
    assert response_error(error, "x") == {"code": "server_error", "message": "x"}


def test_a_rate_limit_keeps_its_code() -> None:
    error = RateLimited("slow down")
    assert error_event_fields(error)["code"] == "rate_limit_exceeded"
    assert response_error(error, "slow down")["code"] == "rate_limit_exceeded"


def test_an_upstreams_own_openai_error_is_kept() -> None:
    error = UpstreamError("bad", failure_class=FailureClass.CALLER_FAULT, http_status=400)
    error.native_body = ("openai", b'{"error":{"message":"too long","type":"invalid_request_'
                                   b'error","param":"input","code":"context_length_exceeded"}}')
    assert error_event_fields(error) == {"code": "context_length_exceeded",
                                         "message": "too long", "param": "input"}
