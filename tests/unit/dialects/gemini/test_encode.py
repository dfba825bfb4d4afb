"""Response, stream, error and model encodings: exact bytes, and google-genai reads them."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.genai import types

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    FinishReason,
    GenerateResponse,
    ModelInfo,
    PartDelta,
    ReasoningPart,
    StreamStarted,
    TextPart,
    ThinkingStyle,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.anthropic.envelope import pack, redacted_block, thinking_block
from cometgate.dialects.gemini.caller_errors import api_key_invalid_error, encode_error
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.caller_stream import GeminiStreamEncoder
from cometgate.dialects.gemini.models import encode_count_tokens, encode_model_list
from cometgate.errors import InvalidRequest, RateLimited, UpstreamUnavailable

WIRE = Path(__file__).parents[3] / "wire" / "gemini"
CREATED = 1750000000.123456
USAGE = Usage(prompt_tokens=8, output_tokens=5, thoughts_tokens=3)


def _response() -> GenerateResponse:
    parts = (
        ReasoningPart("hmm", signature=b"sig\xfb\xff"),
        TextPart("Hello"),
        ToolCallPart("get_weather", {"city_name": "Paris"}, "call-1", b"\x01\x02"),
    )
    return GenerateResponse(
        "gemini-2.5-flash", (Candidate(parts, FinishReason.STOP),), USAGE, "resp-1", CREATED
    )


def test_response_bytes_match_golden() -> None:
    assert encode_response(_response()) == (WIRE / "simple.response.json").read_bytes().strip()


def test_google_genai_reads_the_response() -> None:
    data = orjson.loads(encode_response(_response()))
    sdk = types.GenerateContentResponse._from_response(response=data, kwargs={})
    cand = sdk.candidates[0]
    assert cand.finish_reason == types.FinishReason.STOP
    assert cand.content.parts[0].thought is True
    assert cand.content.parts[0].thought_signature == b"sig\xfb\xff"
    call = cand.content.parts[2].function_call
    assert (call.id, call.name, call.args) == ("call-1", "get_weather", {"city_name": "Paris"})
    usage = sdk.usage_metadata
    assert (
        usage.prompt_token_count,
        usage.candidates_token_count,
        usage.thoughts_token_count,
        usage.total_token_count,
    ) == (8, 5, 3, 16)
    assert sdk.response_id == "resp-1" and sdk.model_version == "gemini-2.5-flash"
    assert sdk.create_time is not None and sdk.create_time.microsecond == 123456


def test_zero_counts_are_omitted() -> None:
    response = GenerateResponse(
        "m",
        (Candidate((TextPart("x"),), FinishReason.MAX_TOKENS),),
        Usage(prompt_tokens=4),
        "r",
        0.0,
    )
    data = orjson.loads(encode_response(response))
    assert data["usageMetadata"] == {
        "promptTokenCount": 4,
        "totalTokenCount": 4,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }
    assert data["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert data["createTime"] == "1970-01-01T00:00:00.000000Z"


def _events() -> list[object]:
    return [
        StreamStarted("gemini-2.5-flash", "resp-1", CREATED),
        PartDelta(ReasoningPart("hmm")),
        PartDelta(TextPart("Hel")),
        PartDelta(TextPart("lo")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(USAGE),
    ]


def _run(encoder: GeminiStreamEncoder) -> bytes:
    out = b""
    for event in _events():
        out += b"".join(encoder.feed(event))  # type: ignore[arg-type]
    return out + b"".join(encoder.end())


def test_sse_stream_matches_golden_and_holds_finish_for_usage() -> None:
    body = _run(GeminiStreamEncoder("sse"))
    assert body == (WIRE / "simple.stream.txt").read_bytes()
    events = body.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    last = orjson.loads(events[-2][6:])
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["totalTokenCount"] == 16


def test_google_genai_reads_each_stream_chunk() -> None:
    chunks = [orjson.loads(e[6:]) for e in _run(GeminiStreamEncoder()).split(b"\r\n\r\n")[:-1]]
    parsed = [types.GenerateContentResponse._from_response(response=c, kwargs={}) for c in chunks]
    assert "".join(p.text or "" for p in parsed) == "Hello"
    assert parsed[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(p.response_id == "resp-1" for p in parsed)


def test_finish_without_usage_is_released_at_end() -> None:
    encoder = GeminiStreamEncoder()
    encoder.feed(StreamStarted("m", "r", 0.0))
    assert encoder.feed(CandidateFinished(FinishReason.SAFETY)) == []
    (last,) = encoder.end()
    assert orjson.loads(last[6:])["candidates"][0]["finishReason"] == "SAFETY"


def test_json_array_framing() -> None:
    body = _run(GeminiStreamEncoder("json"))
    assert body.startswith(b"[{") and body.endswith(b"}]")
    assert body.count(b",\r\n{") == 3
    assert len(orjson.loads(body)) == 4
    empty = GeminiStreamEncoder("json")
    assert empty.end() == [b"[]"]


def test_mid_stream_errors() -> None:
    encoder = GeminiStreamEncoder()
    assert encoder.fail(UpstreamUnavailable("overloaded")) == [
        b'data: {"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}\r\n\r\n'
    ]
    array = GeminiStreamEncoder("json")
    array.feed(StreamStarted("m", "r", 0.0))
    pieces = array.feed(PartDelta(TextPart("x"))) + array.fail(UpstreamUnavailable("down"))
    assert orjson.loads(b"".join(pieces))[1] == {
        "error": {"code": 503, "message": "down", "status": "UNAVAILABLE"}
    }


def test_error_envelopes() -> None:
    status, body = encode_error(InvalidRequest("a\nb", violations={"": "a", "x.y": "b"}))
    assert status == 400
    assert orjson.loads(body) == {
        "error": {
            "code": 400,
            "message": "a\nb",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"description": "a"}, {"field": "x.y", "description": "b"}],
                }
            ],
        }
    }
    status, body = encode_error(RateLimited("slow down", retry_after=3))
    assert status == 429
    assert orjson.loads(body)["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}
    ]
    assert body.startswith(b'{"error":{"code":429,')
    status, body = encode_error(UpstreamUnavailable("busy", retry_after=1.5))
    assert orjson.loads(body)["error"]["details"][0]["retryDelay"] == "1.5s"
    assert "details" not in orjson.loads(encode_error(InvalidRequest("plain"))[1])["error"]


def test_api_key_invalid() -> None:
    status, body = api_key_invalid_error()
    error = orjson.loads(body)["error"]
    assert status == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert error["details"][1]["@type"] == "type.googleapis.com/google.rpc.LocalizedMessage"


def _model(i: int) -> ModelInfo:
    return ModelInfo(
        f"m{i}", f"M{i}", "d", "1", f"m{i}", 100, 10, thinking=ThinkingStyle.BUDGET, temperature=1.0
    )


def test_model_list_pagination_and_sdk_reads_it() -> None:
    infos = [_model(i) for i in range(5)]
    first = encode_model_list(infos, 2)
    assert [m["name"] for m in first["models"]] == ["models/m0", "models/m1"]
    second = encode_model_list(infos, 2, first["nextPageToken"])
    last = encode_model_list(infos, 2, second["nextPageToken"])
    assert [m["name"] for m in last["models"]] == ["models/m4"]
    assert "nextPageToken" not in last
    assert len(encode_model_list(infos)["models"]) == 5
    sdk = types.Model._from_response(response=first["models"][0], kwargs={})
    assert sdk.name == "models/m0" and sdk.thinking is True and sdk.input_token_limit == 100


@pytest.mark.parametrize("token", ["garbage!", "b2Zmc2V0Ong="])
def test_bad_page_token(token: str) -> None:
    with pytest.raises(InvalidRequest):
        encode_model_list([_model(0)], None, token)


def test_count_tokens() -> None:
    assert encode_count_tokens(7) == (
        b'{"totalTokens":7,"promptTokensDetails":[{"modality":"TEXT","tokenCount":7}]}'
    )
    sdk = types.CountTokensResponse._from_response(
        response=orjson.loads(encode_count_tokens(7)), kwargs={}
    )
    assert sdk.total_tokens == 7


THOUGHT = thinking_block("Check Lima.", "sig-lima")
HIDDEN = redacted_block("opaque")
CALL = ToolCallPart("get_weather", {"city": "Lima"}, "toolu_1")


def _signatures(parts: list[dict[str, Any]]) -> list[bytes | None]:
    return [base64.b64decode(p["thoughtSignature"]) if "thoughtSignature" in p else None
            for p in parts]


def test_anthropic_thinking_is_copied_onto_the_call_that_follows_it() -> None:
    parts = (ReasoningPart("Check Lima.", pack([THOUGHT])), ReasoningPart("", pack([HIDDEN])),
             TextPart("Let me look."), CALL, ToolCallPart("get_weather", {"city": "Oslo"}))
    response = GenerateResponse("m", (Candidate(parts, FinishReason.STOP),), USAGE, "r", 0.0)
    encoded = orjson.loads(encode_response(response))["candidates"][0]["content"]["parts"]
    assert _signatures(encoded) == [pack([THOUGHT]), pack([HIDDEN]), None,
                                    pack([THOUGHT, HIDDEN]), None]


def test_a_call_keeps_its_own_signature_and_gemini_signatures_are_not_copied() -> None:
    parts = (ReasoningPart("hmm", b"gemini-sig"), CALL,
             ReasoningPart("Check Lima.", pack([THOUGHT])), replace(CALL, signature=b"own"))
    response = GenerateResponse("m", (Candidate(parts, FinishReason.STOP),), USAGE, "r", 0.0)
    encoded = orjson.loads(encode_response(response))["candidates"][0]["content"]["parts"]
    assert _signatures(encoded) == [b"gemini-sig", None, pack([THOUGHT]), b"own"]


def test_a_stream_copies_each_candidates_own_thinking_onto_its_call() -> None:
    encoder = GeminiStreamEncoder("sse")
    events = [StreamStarted("m", "r", 0.0), PartDelta(ReasoningPart("Check Lima.")),
              PartDelta(ReasoningPart("", pack([THOUGHT]))),
              PartDelta(ReasoningPart("", pack([HIDDEN])), index=1),
              PartDelta(CALL, index=1), PartDelta(CALL), PartDelta(CALL)]
    body = b"".join(piece for event in events for piece in encoder.feed(event))
    chunks = [orjson.loads(e[6:]) for e in body.split(b"\r\n\r\n")[:-1]]
    calls = [(c["candidates"][0]["index"], _signatures(c["candidates"][0]["content"]["parts"]))
             for c in chunks if "functionCall" in c["candidates"][0]["content"]["parts"][0]]
    assert calls == [(1, [pack([HIDDEN])]), (0, [pack([THOUGHT])]), (0, [None])]


def test_hidden_thinking_on_a_text_part_is_copied_onto_the_call_too() -> None:
    parts = (TextPart("Let me look.", pack([THOUGHT])), CALL)
    response = GenerateResponse("m", (Candidate(parts, FinishReason.STOP),), USAGE, "r", 0.0)
    encoded = orjson.loads(encode_response(response))["candidates"][0]["content"]["parts"]
    assert _signatures(encoded) == [pack([THOUGHT]), pack([THOUGHT])]
