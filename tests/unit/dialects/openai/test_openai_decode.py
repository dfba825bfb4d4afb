"""OpenAI Chat Completions responses and error envelopes → canonical values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateRequest,
    Message,
    OutputFormat,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.openai.upstream_request import classify_error, decode_response
from cometgate.dialects.openai.upstream_response import decode_logprobs
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "openai"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))


def fixture(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def test_text_completion() -> None:
    response = decode_response(fixture("completion_text.json"), REQUEST, "alias")
    assert response.model_version == "alias"
    assert response.candidates == (
        Candidate((TextPart("Hello! How can I assist you today?"),), FinishReason.STOP, 0),
    )
    assert response.usage == Usage(prompt_tokens=19, output_tokens=10)
    assert response.created == 1741569952.0


def test_response_id_is_fresh_and_not_the_upstream_one() -> None:
    first = decode_response(fixture("completion_text.json"), REQUEST, "alias")
    second = decode_response(fixture("completion_text.json"), REQUEST, "alias")
    assert "chatcmpl" not in first.response_id
    assert first.response_id != second.response_id
    assert len(first.response_id) >= 20


def test_parallel_tool_calls() -> None:
    response = decode_response(fixture("completion_tool_calls.json"), REQUEST, "alias")
    assert response.candidates[0] == Candidate(
        (ToolCallPart("get_current_weather", {"location": "Boston, MA"}, "call_abc123"),
         ToolCallPart("get_current_weather", {"location": "Paris", "unit": "celsius"},
                      "call_def456")),
        FinishReason.STOP,
    )


def test_malformed_arguments_finish_as_malformed_tool_call() -> None:
    response = decode_response(fixture("completion_malformed_args.json"), REQUEST, "alias")
    # The unreadable call is left out; the empty-argument call is kept with {}.
    assert response.candidates[0].parts == (ToolCallPart("noargs", {}, "call_2"),)
    assert response.candidates[0].finish_reason is FinishReason.MALFORMED_TOOL_CALL


@pytest.mark.parametrize(("include", "expected_parts"), [
    (True, (ReasoningPart("The user greets me; answer briefly."), TextPart("Hi there!"))),
    (False, (TextPart("Hi there!"),)),
    (None, (TextPart("Hi there!"),)),
])
def test_reasoning_only_when_thoughts_are_asked_for(
    include: bool | None, expected_parts: tuple[object, ...]
) -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              thinking=ThinkingConfig(include_thoughts=include))
    response = decode_response(fixture("completion_reasoning.json"), request, "a")
    assert response.candidates[0].parts == expected_parts
    assert response.candidates[0].finish_reason is FinishReason.MAX_TOKENS
    assert response.usage == Usage(prompt_tokens=2006, output_tokens=100, thoughts_tokens=200,
                                   cached_tokens=1920)


def test_ollama_style_reasoning_field() -> None:
    body = (b'{"choices":[{"index":0,"message":{"role":"assistant","reasoning":"r",'
            b'"content":"c"},"finish_reason":"stop"}]}')
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              thinking=ThinkingConfig(include_thoughts=True))
    response = decode_response(body, request, "a")
    assert response.candidates[0].parts == (ReasoningPart("r"), TextPart("c"))
    assert response.usage == Usage()


def test_logprobs_are_available() -> None:
    import orjson

    choice = orjson.loads(fixture("completion_reasoning.json"))["choices"][0]
    assert decode_logprobs(choice) == (
        TokenLogprob("Hi", -0.01, (("Hi", -0.01), ("Hello", -4.6))),
        TokenLogprob(" there!", -0.2),
    )
    assert decode_logprobs({"logprobs": None}) == ()
    response = decode_response(fixture("completion_reasoning.json"), REQUEST, "alias")
    assert response.candidates[0].logprobs == decode_logprobs(choice)


def test_enum_output_returns_the_bare_value() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              output=OutputFormat("enum", {"type": "string", "enum": ["é"]}))
    body = (b'{"choices":[{"index":0,"message":{"content":"\\"\\\\u00e9\\""},'
            b'"finish_reason":"stop"}]}')
    assert decode_response(body, request, "a").candidates[0].parts == (TextPart("é"),)
    not_json = b'{"choices":[{"index":0,"message":{"content":"plain"},"finish_reason":"stop"}]}'
    assert decode_response(not_json, request, "a").candidates[0].parts == (TextPart("plain"),)


@pytest.mark.parametrize(("wire", "reason"), [
    ("stop", FinishReason.STOP),
    ("length", FinishReason.MAX_TOKENS),
    ("tool_calls", FinishReason.STOP),
    ("content_filter", FinishReason.SAFETY),
    ("something_new", FinishReason.OTHER),
])
def test_finish_reasons(wire: str, reason: FinishReason) -> None:
    body = f'{{"choices":[{{"index":0,"message":{{"content":"x"}},"finish_reason":"{wire}"}}]}}'
    assert decode_response(body.encode(), REQUEST, "a").candidates[0].finish_reason is reason


def test_refusal_finishes_for_safety() -> None:
    body = (b'{"choices":[{"index":0,"message":{"content":null,"refusal":"I cannot help."},'
            b'"finish_reason":"stop"}]}')
    candidate = decode_response(body, REQUEST, "a").candidates[0]
    assert candidate == Candidate((TextPart("I cannot help."),), FinishReason.SAFETY)


def test_several_choices_keep_their_index() -> None:
    body = (b'{"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"},'
            b'{"index":1,"message":{"content":"b"},"finish_reason":"length"}]}')
    candidates = decode_response(body, REQUEST, "a").candidates
    assert [(c.index, c.parts, c.finish_reason) for c in candidates] == [
        (0, (TextPart("a"),), FinishReason.STOP), (1, (TextPart("b"),), FinishReason.MAX_TOKENS)]


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1,2]", b'{"object":"list"}'])
def test_unreadable_success_body(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="unreadable") as caught:
        decode_response(body, REQUEST, "a")
    assert caught.value.failure_class is FailureClass.TRANSIENT


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "name", "failure", "http", "rpc"), [
    (400, "error_context_length.json", FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    (400, "error_vllm_bad_request.json", FailureClass.CALLER_FAULT, 400, "INVALID_ARGUMENT"),
    (401, "error_invalid_api_key.json", FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    (403, "error_invalid_api_key.json", FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    (403, "error_forbidden_resource.json", FailureClass.CALLER_FAULT, 403, "PERMISSION_DENIED"),
    (403, "error_unsupported_region.json", FailureClass.CREDENTIAL, 503, "UNAVAILABLE"),
    (404, "error_model_not_found.json", FailureClass.UNKNOWN, 502, "UNAVAILABLE"),
    (429, "error_rate_limit.json", FailureClass.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"),
    (429, "error_insufficient_quota.json", FailureClass.QUOTA, 503, "UNAVAILABLE"),
    (500, "error_server.json", FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    (503, "error_server.json", FailureClass.TRANSIENT, 503, "UNAVAILABLE"),
    (504, "error_server.json", FailureClass.TRANSIENT, 504, "DEADLINE_EXCEEDED"),
])
def test_classify_error_fixtures(
    status: int, name: str, failure: FailureClass, http: int, rpc: str
) -> None:
    error = classify_error(status, {}, fixture(name))
    assert (error.failure_class, error.http_status, error.status) == (failure, http, rpc)
    assert error.upstream_status == status


def test_caller_fault_carries_the_upstream_message() -> None:
    error = classify_error(400, {}, fixture("error_context_length.json"))
    assert error.message.startswith("This model's maximum context length is 128000 tokens.")


def test_credential_failure_does_not_leak_the_upstream_message() -> None:
    error = classify_error(401, {}, fixture("error_invalid_api_key.json"))
    assert error.message == "upstream credential rejected"
    assert "sk-" not in error.message


@pytest.mark.parametrize(("status", "body", "failure"), [
    (408, b"", FailureClass.TRANSIENT),
    (409, b"", FailureClass.TRANSIENT),
    (502, b"<html>Bad Gateway</html>", FailureClass.TRANSIENT),
    (422, b'{"detail":[{"msg":"field required"}]}', FailureClass.CALLER_FAULT),
    (413, b"too large", FailureClass.CALLER_FAULT),
    (404, b"404 page not found", FailureClass.UNKNOWN),  # wrong base URL, not the caller
    (404, b'{"error":{"type":"invalid_request_error","code":null,"message":"no"}}',
     FailureClass.CALLER_FAULT),
    (418, b"{}", FailureClass.UNKNOWN),
    (400, b'{"error":"model \\"x\\" not found"}', FailureClass.CALLER_FAULT),  # Ollama
    (402, b'{"error":{"type":"insufficient_quota","code":null}}', FailureClass.QUOTA),
])
def test_classify_by_status_and_structured_fields(
    status: int, body: bytes, failure: FailureClass
) -> None:
    assert classify_error(status, {}, body).failure_class is failure


@pytest.mark.parametrize(("status", "body", "failure"), [
    (401, b'{"error":"Unauthorized"}', FailureClass.CREDENTIAL),  # vLLM --api-key
    (401, b"", FailureClass.CREDENTIAL),  # only the gateway's key authenticates an upstream call
    (403, b'{"error":{"message":"x","type":"authentication_error","code":401}}',
     FailureClass.CREDENTIAL),  # llama.cpp's server
    (403, b'{"error":{"message":"x","type":"invalid_request_error","code":"account_deactivated"}}',
     FailureClass.CREDENTIAL),
    (403, b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}',
     FailureClass.CALLER_FAULT),  # never from message text
    (403, b"<html>Forbidden</html>", FailureClass.CALLER_FAULT),
    (403, b'{"error":{"type":["authentication_error"],"code":{"x":1}}}', FailureClass.CALLER_FAULT),
    (403, b'{"error":{"message":"x","type":"invalid_request_error","code":"model_not_found"}}',
     FailureClass.UNKNOWN),  # the configured model is not the project's: a configuration fault
])
def test_a_403_rests_the_key_only_for_a_structured_reason(
    status: int, body: bytes, failure: FailureClass
) -> None:
    assert classify_error(status, {}, body).failure_class is failure


def test_non_json_caller_fault_body_becomes_the_message() -> None:
    assert classify_error(400, {}, b"  bad things  ").message == "bad things"
    assert classify_error(400, {}, b"").message == "the upstream rejected the request (HTTP 400)"


def test_message_text_never_decides_the_class() -> None:
    body = b'{"error":{"message":"rate limit exceeded, insufficient_quota","type":null}}'
    assert classify_error(500, {}, body).failure_class is FailureClass.TRANSIENT


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"Retry-After": "20"}, 20.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "20"}, 0.25),
    ({"retry-after": "soon"}, None),
    ({"retry-after": "-3"}, None),
    ({"retry-after": "inf"}, None),
    ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
    ({}, None),
])
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    error = classify_error(429, headers, fixture("error_rate_limit.json"))
    assert error.retry_after == seconds
