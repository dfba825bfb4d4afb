"""Gemini answers → canonical responses and stream events: the mirror of the response and
stream encoders, and the shapes Google really sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    BlobPart,
    Candidate,
    FileRefPart,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.upstream_response import (
    decode_response,
    finish_reason,
)
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "gemini"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
CREATED = 1750000000.123456
SIGNATURE = "CiQBjz1rX0ilumvPg6k0sMMUtISoQCLJv2bPJ7Vv9r+Xw0o="


def decode(document: Any) -> GenerateResponse:
    return decode_response(orjson.dumps(document), REQUEST, "alias")


def parts_of(response: GenerateResponse, index: int = 0) -> tuple[Any, ...]:
    return response.candidates[index].parts


# --- whole answers ----------------------------------------------------------------------------


def test_every_canonical_response_comes_back_from_its_gemini_form() -> None:
    response = GenerateResponse(
        model_version="alias",
        candidates=(
            Candidate((ReasoningPart("hmm", b"sig\xfb\xff"), TextPart("Hello", b"\x01"),
                       ToolCallPart("get_weather", {"city": "Paris"}, "call-1", b"\x02"),
                       ToolCallPart("get_weather", {"city": "Rome"}, "call-2")),
                      FinishReason.STOP),
            Candidate((BlobPart("image/png", b"\x89PNG\x00"),
                       FileRefPart("https://example.com/a.pdf", "application/pdf"),
                       FileRefPart("files/abc")), FinishReason.MAX_TOKENS, 1),
            Candidate((TextPart(""),), FinishReason.MALFORMED_TOOL_CALL, 2),
            Candidate((), None, 3),
        ),
        usage=Usage(prompt_tokens=4180, output_tokens=12, thoughts_tokens=40,
                    cached_tokens=4096),
        response_id="WEXbaMnpJ6u5nvgPo8CFsQ4",
        created=CREATED,
    )
    assert decode_response(encode_response(response), REQUEST, "alias") == response


@pytest.mark.parametrize("reason", list(FinishReason))
def test_each_finish_reason_round_trips(reason: FinishReason) -> None:
    response = GenerateResponse("alias", (Candidate((TextPart("x"),), reason),), Usage(), "r",
                                CREATED)
    assert decode_response(encode_response(response), REQUEST, "alias") == response


@pytest.mark.parametrize(("gemini", "canonical"), [
    ("STOP", FinishReason.STOP), ("MAX_TOKENS", FinishReason.MAX_TOKENS),
    ("SAFETY", FinishReason.SAFETY), ("RECITATION", FinishReason.RECITATION),
    ("MALFORMED_FUNCTION_CALL", FinishReason.MALFORMED_TOOL_CALL),
    ("BLOCKLIST", FinishReason.SAFETY), ("PROHIBITED_CONTENT", FinishReason.SAFETY),
    ("SPII", FinishReason.SAFETY), ("IMAGE_SAFETY", FinishReason.SAFETY),
    ("LANGUAGE", FinishReason.OTHER), ("OTHER", FinishReason.OTHER),
    ("UNEXPECTED_TOOL_CALL", FinishReason.OTHER), ("FINISH_REASON_UNSPECIFIED",
                                                   FinishReason.OTHER),
    ("SOMETHING_NEW", FinishReason.OTHER), (7, FinishReason.OTHER), (None, None),
])
def test_finish_reasons(gemini: object, canonical: FinishReason | None) -> None:
    assert finish_reason(gemini) is canonical


def test_real_thinking_answer_with_signature_and_usage() -> None:
    # Pretty-printed, no candidate index, as Google answers :generateContent.
    body = orjson.dumps({
        "candidates": [{
            "content": {"parts": [
                {"text": "**Weighing the options**\n\nThe user asks…", "thought": True},
                {"text": "Paris.", "thoughtSignature": SIGNATURE},
            ], "role": "model"},
            "finishReason": "STOP",
        }],
        "usageMetadata": {"promptTokenCount": 28, "candidatesTokenCount": 643,
                          "totalTokenCount": 1845, "thoughtsTokenCount": 1174,
                          "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 28}]},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "ictQaOn0MeeDmNAP8OOwqA0",
    }, option=orjson.OPT_INDENT_2)
    response = decode_response(body, REQUEST, "alias")
    assert response.model_version == "alias"
    assert response.response_id == "ictQaOn0MeeDmNAP8OOwqA0"
    assert parts_of(response) == (
        ReasoningPart("**Weighing the options**\n\nThe user asks…"),
        TextPart("Paris.", bytes.fromhex(
            "0a24018f3d6b5f48a5ba6bcf83a934b0c314b484a84022c9bf66cf27b56ff6bf97c34a")),
    )
    assert response.usage == Usage(prompt_tokens=28, output_tokens=643, thoughts_tokens=1174)
    assert response.usage.total_tokens == 1845
    assert response.candidates[0].index == 0


def test_real_parallel_function_calls_get_stable_distinct_ids() -> None:
    document = {
        "candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": SIGNATURE},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            {"functionCall": {"name": "get_time"}},
        ], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 30,
                          "totalTokenCount": 100},
        "modelVersion": "gemini-2.5-flash", "responseId": "Rt9QaNyLJ8a3nvgP2aOP4Ak",
    }
    calls = parts_of(decode(document))
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"}), ("get_time", {})]
    assert calls[0].signature is not None and calls[1].signature is None
    ids = [c.call_id for c in calls]
    assert len(set(ids)) == 3
    assert all(i.startswith("call_") and len(i) == 29 for i in ids)
    assert [c.call_id for c in parts_of(decode(document))] == ids  # stable
    other = dict(document, responseId="another")
    assert {c.call_id for c in parts_of(decode(other))}.isdisjoint(ids)


def test_an_upstream_call_id_is_kept() -> None:
    document = {"candidates": [{"content": {"parts": [
        {"functionCall": {"id": "fc-7", "name": "f", "args": {"a": [1, {"b": None}]}}}]}}]}
    assert parts_of(decode(document)) == (ToolCallPart("f", {"a": [1, {"b": None}]}, "fc-7"),)


def test_real_usage_with_cached_and_tool_use_prompt_tokens() -> None:
    response = decode({
        "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 4180, "cachedContentTokenCount": 4096,
                          "candidatesTokenCount": 2, "toolUsePromptTokenCount": 20,
                          "totalTokenCount": 4202,
                          "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 4096}]},
    })
    assert response.usage == Usage(prompt_tokens=4200, output_tokens=2, cached_tokens=4096)


@pytest.mark.parametrize(("block_reason", "reason"), [
    ("SAFETY", FinishReason.SAFETY), ("PROHIBITED_CONTENT", FinishReason.SAFETY),
    ("BLOCKLIST", FinishReason.SAFETY), ("OTHER", FinishReason.OTHER),
    ("BLOCK_REASON_UNSPECIFIED", FinishReason.OTHER),
])
def test_a_blocked_prompt_is_one_empty_candidate(block_reason: str,
                                                 reason: FinishReason) -> None:
    response = decode({
        "promptFeedback": {"blockReason": block_reason, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
             "blocked": True}]},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.0-flash", "responseId": "blocked-1",
    })
    assert response.candidates == (Candidate((), reason),)
    assert response.usage == Usage(prompt_tokens=8)


def test_a_candidate_stopped_for_safety_has_no_content() -> None:
    response = decode({"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]}]})
    assert response.candidates == (Candidate((), FinishReason.SAFETY),)


def test_an_empty_answer_and_missing_ids() -> None:
    response = decode({})
    assert response.candidates == () and response.usage == Usage()
    assert response.response_id  # a fresh id, since the upstream sent none


def test_code_execution_parts_are_left_out_and_named() -> None:
    response = decode({"candidates": [{"content": {"parts": [
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
        {"text": "It prints 1."},
        {"thoughtSignature": "AQID"},
    ], "role": "model"}, "finishReason": "STOP"}]})
    assert parts_of(response) == (TextPart("It prints 1."), TextPart("", b"\x01\x02\x03"))
    assert response.dropped == (
        "candidates[0].content.parts[0]: executableCode has no form outside the Gemini API",
        "candidates[0].content.parts[1]: codeExecutionResult has no form outside the Gemini API",
    )


def test_url_safe_signatures_and_unknown_fields_are_read() -> None:
    response = decode({"candidates": [{"content": {"parts": [
        {"text": "x", "thoughtSignature": "c2ln-_8"}]}, "avgLogprobs": -0.2,
        "citationMetadata": {}}], "modelStatus": {}})
    assert parts_of(response) == (TextPart("x", b"sig\xfb\xff"),)


@pytest.mark.parametrize("body", [
    b"<html>502 Bad Gateway</html>", b"[1, 2]", b'"text"',
    b'{"candidates": {"not": "a list"}}', b'{"candidates": [7]}',
    b'{"candidates": [{"content": {"parts": [{"text": 5}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"text": "x", "thoughtSignature": "%%%"}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]}',
    b'{"candidates": [{"content": {"parts": [{"fileData": {"mimeType": "a/b"}}]}}]}',
])
def test_an_unreadable_answer_is_a_transient_upstream_failure(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        decode_response(body, REQUEST, "alias")
    assert caught.value.failure_class is FailureClass.TRANSIENT  # another candidate may answer
    assert caught.value.http_status == 502


def test_an_error_answered_with_200_is_classified() -> None:
    body = orjson.dumps({"error": {"code": 429, "message": "slow down",
                                   "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(UpstreamError) as caught:
        decode_response(body, REQUEST, "alias")
    assert caught.value.failure_class is FailureClass.RATE_LIMITED
