"""Gateway errors → OpenAI error answers, and the exception the openai SDK raises for them."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from cometgate.dialects.openai.caller_errors import encode_openai_error
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

from .sdk_client import answering, sdk_client


def envelope(message: str, kind: str, param: str | None = None,
             code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def decoded(error: GatewayError, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    status, body = encode_openai_error(error, **kwargs)
    return status, orjson.loads(body)


@pytest.mark.parametrize(("error", "status", "kind", "code"), [
    (Unauthenticated("The admin key is not valid."), 401, "invalid_request_error", None),
    (PermissionDenied("This API key is not allowed to use models/x."), 403,
     "request_forbidden", None),
    (NotFound("Method not found: GET /v1/nothing"), 404, "invalid_request_error", None),
    (PayloadTooLarge("Request payload size exceeds the limit."), 413,
     "invalid_request_error", None),
    (RateLimited("Rate limit reached for requests.", retry_after=3), 429, "requests",
     "rate_limit_exceeded"),
    (BudgetExhausted("The key's budget is spent."), 429, "insufficient_quota",
     "insufficient_quota"),
    (UpstreamError("upstream rate limit reached", failure_class=FailureClass.RATE_LIMITED,
                   http_status=429), 429, "requests", "rate_limit_exceeded"),
    (UpstreamUnavailable("no upstream could answer"), 503, "service_unavailable_error", None),
    (UpstreamTimeout("upstream timed out"), 504, "server_error", None),
    (UpstreamError("bad gateway", failure_class=FailureClass.UNKNOWN, http_status=502), 502,
     "server_error", None),
    (UpstreamError("too long", failure_class=FailureClass.CALLER_FAULT, http_status=400), 400,
     "invalid_request_error", None),
    (InternalError("Internal error encountered."), 500, "server_error", None),
])
def test_status_type_and_code(
    error: GatewayError, status: int, kind: str, code: str | None
) -> None:
    assert decoded(error) == (status, envelope(error.message, kind, None, code))


def test_invalid_request_names_its_first_violation_as_param() -> None:
    error = InvalidRequest("Invalid 'temperature': decimal above maximum value.",
                           violations={"temperature": "must be <= 2", "top_p": "x"})
    assert decoded(error) == (400, envelope(error.message, "invalid_request_error",
                                            "temperature"))
    assert decoded(InvalidRequest("bad"))[1]["error"]["param"] is None


def test_keys_are_answered_as_openai_answers_them() -> None:
    status, body = decoded(ApiKeyInvalid())
    assert (status, body["error"]["code"], body["error"]["type"]) == (
        401, "invalid_api_key", "invalid_request_error")
    assert body["error"]["message"].startswith("Incorrect API key provided")
    status, body = decoded(KeyMissing())
    assert (status, body["error"]["code"]) == (401, None)
    assert body["error"]["message"].startswith("You didn't provide an API key.")


def test_not_found_about_a_model_is_model_not_found() -> None:
    status, body = decoded(NotFound("models/gpt-9 is not found."), model="gpt-9")
    assert (status, body) == (404, envelope(
        "The model `gpt-9` does not exist or you do not have access to it.",
        "invalid_request_error", None, "model_not_found"))


def test_an_upstream_openai_body_passes_through_unchanged() -> None:
    native = b'{\n  "error": {"message": "This model\'s maximum context length is 8192",' \
             b' "type": "invalid_request_error", "param": "messages",' \
             b' "code": "context_length_exceeded"}\n}'
    error = UpstreamError("too long", failure_class=FailureClass.CALLER_FAULT, http_status=400)
    error.native_body = ("openai", native)
    assert encode_openai_error(error) == (400, native)


def test_a_native_body_of_another_dialect_is_not_relayed() -> None:
    error = UpstreamError("too long", failure_class=FailureClass.CALLER_FAULT, http_status=400)
    error.native_body = ("gemini", b'{"error":{"code":400}}')
    assert decoded(error)[1] == envelope("too long", "invalid_request_error")


@pytest.mark.parametrize(("error", "exception"), [
    (ApiKeyInvalid(), openai.AuthenticationError),
    (KeyMissing(), openai.AuthenticationError),
    (PermissionDenied("no"), openai.PermissionDeniedError),
    (NotFound("models/x is not found."), openai.NotFoundError),
    (InvalidRequest("bad", violations={"n": "x"}), openai.BadRequestError),
    (RateLimited("slow"), openai.RateLimitError),
    (BudgetExhausted("spent"), openai.RateLimitError),
    (UpstreamUnavailable("down"), openai.InternalServerError),
])
def test_the_sdk_raises_the_matching_exception(
    error: GatewayError, exception: type[openai.APIStatusError]
) -> None:
    status, body = encode_openai_error(error, model="x")
    client = sdk_client(answering(status, body))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    sent = orjson.loads(body)["error"]
    assert caught.value.code == sent["code"]
    assert caught.value.type == sent["type"]
    assert caught.value.param == sent["param"]
