"""Gateway errors → Anthropic error answers, raised by the anthropic SDK as Anthropic's own."""

from __future__ import annotations

import anthropic
import orjson
import pytest
from tests.unit.dialects.anthropic.anthropic_sdk import client, json_answer

from cometgate.dialects.anthropic.caller_errors import encode_anthropic_error
from cometgate.dialects.anthropic.upstream_errors import classify_error
from cometgate.errors import (
    ApiKeyInvalid,
    BudgetExhausted,
    FailureClass,
    GatewayError,
    InternalError,
    InvalidRequest,
    KeyMissing,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)


def bad_gateway() -> UpstreamError:
    return UpstreamError("unreadable upstream response: not JSON",
                         failure_class=FailureClass.UNKNOWN, http_status=502,
                         status="UNAVAILABLE")


def method_not_allowed() -> GatewayError:
    error = GatewayError("Method GET is not allowed on /v1/messages.")
    error.http_status = 405
    return error


CASES = [
    (InvalidRequest("max_tokens: Field required"), 400, "invalid_request_error",
     anthropic.BadRequestError),
    (ApiKeyInvalid(), 401, "authentication_error", anthropic.AuthenticationError),
    (KeyMissing(), 401, "authentication_error", anthropic.AuthenticationError),
    (Unauthenticated("token expired"), 401, "authentication_error",
     anthropic.AuthenticationError),
    (PermissionDenied("key may not use this model"), 403, "permission_error",
     anthropic.PermissionDeniedError),
    (NotFound("model claude-x not found"), 404, "not_found_error", anthropic.NotFoundError),
    (PayloadTooLarge("request exceeds 32 MB"), 413, "request_too_large",
     anthropic.ContentTooLargeError),
    (RateLimited("slow down", retry_after=3), 429, "rate_limit_error", anthropic.RateLimitError),
    (BudgetExhausted("budget spent"), 429, "rate_limit_error", anthropic.RateLimitError),
    (UpstreamUnavailable("no upstream could answer"), 529, "overloaded_error",
     anthropic.OverloadedError),
    (UpstreamTimeout("upstream timed out"), 504, "timeout_error", anthropic.GatewayTimeoutError),
    (bad_gateway(), 502, "api_error", anthropic.InternalServerError),
    (InternalError("boom"), 500, "api_error", anthropic.InternalServerError),
    (method_not_allowed(), 405, "invalid_request_error", anthropic.APIStatusError),
]


@pytest.mark.parametrize(("error", "status", "kind", "raised"), CASES)
def test_status_type_and_what_the_sdk_raises(error: GatewayError, status: int, kind: str,
                                             raised: type[anthropic.APIStatusError]) -> None:
    got_status, body = encode_anthropic_error(error, "req_123")
    assert got_status == status
    document = orjson.loads(body)
    assert document["type"] == "error" and document["request_id"] == "req_123"
    assert document["error"]["type"] == kind
    if kind != "request_too_large":  # documented by Anthropic, not (yet) typed by the SDK
        anthropic.types.ErrorResponse.model_validate(document)
    sdk = client(json_answer(body, status))
    with pytest.raises(raised) as caught:
        sdk.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == document


def test_messages_are_the_errors_own_except_anthropics_key_wording() -> None:
    def message(error: GatewayError) -> str:
        text: str = orjson.loads(encode_anthropic_error(error)[1])["error"]["message"]
        return text

    assert message(InvalidRequest("max_tokens: Field required")) == "max_tokens: Field required"
    assert message(KeyMissing()) == "x-api-key header is required"
    assert message(ApiKeyInvalid()) == "invalid x-api-key"


def test_no_request_id_key_without_one() -> None:
    assert orjson.loads(encode_anthropic_error(NotFound("nope"))[1]) == {
        "type": "error", "error": {"type": "not_found_error", "message": "nope"}}


def test_an_anthropic_upstreams_own_answer_is_relayed_unchanged() -> None:
    native = (b'{"type":"error","error":{"type":"invalid_request_error","message":'
              b'"messages.1: tool_use ids were found without tool_result blocks"},'
              b'"request_id":"req_up"}')
    error = classify_error(400, {}, native)
    error.native_body = ("anthropic", native)
    assert encode_anthropic_error(error, "req_mine") == (400, native)
    error.native_body = ("gemini", b'{"error":{"code":400}}')  # another dialect's: not relayed
    status, body = encode_anthropic_error(error)
    assert status == 400
    assert orjson.loads(body)["error"]["message"] == (
        "messages.1: tool_use ids were found without tool_result blocks")
