"""Log probabilities in the Gemini dialect: `logprobsResult` and `avgLogprobs` read from a
Gemini upstream's answers and chunks, and written for Gemini callers in answers and chunks
that google-genai reads back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from google.genai import types

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Message,
    PartDelta,
    StreamEvent,
    StreamStarted,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.caller_stream import GeminiStreamEncoder
from cometgate.dialects.gemini.upstream_response import decode_response, decode_stream
from cometgate.dialects.sse_decode import SSEFrame, decode_sse
from cometgate.errors import UpstreamError

REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
HI = TokenLogprob("Hi", -0.5, (("Hi", -0.5), ("Hello", -1.5)))
THERE = TokenLogprob(" there", -1.5, (("!", -0.25),))
# What Google writes for HI and THERE: proto3 leaves out the 0.0 of a certain token.
RESULT = {
    "topCandidates": [
        {"candidates": [{"token": "Hi", "tokenId": 1, "logProbability": -0.5},
                        {"token": "Hello", "tokenId": 2, "logProbability": -1.5}]},
        {"candidates": [{"token": "!", "tokenId": 3, "logProbability": -0.25}]},
    ],
    "chosenCandidates": [{"token": "Hi", "tokenId": 1, "logProbability": -0.5},
                         {"token": " there", "tokenId": 4, "logProbability": -1.5}],
    "logProbabilitySum": -2.0,
}


def answer(*parts: dict[str, Any], result: object = None, finish: str | None = "STOP",
           index: int | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    if result is not None:
        candidate["logprobsResult"] = result
        candidate["avgLogprobs"] = -1.0
    if index is not None:
        candidate["index"] = index
    return {"candidates": [candidate], "responseId": "resp-1", "modelVersion": "gemini-x"}


# --- decoding a Gemini upstream's answers -------------------------------------------------


def test_an_answer_carries_chosen_tokens_with_their_top_candidates() -> None:
    body = orjson.dumps(answer({"text": "Hi there"}, result=RESULT))
    candidate = decode_response(body, REQUEST, "alias").candidates[0]
    assert candidate == Candidate((TextPart("Hi there"),), FinishReason.STOP, 0, (HI, THERE))


def test_left_out_zero_values_and_missing_top_candidates() -> None:
    result = {"chosenCandidates": [{"token": "a"}, {"logProbability": -2}, {"token": "c"}],
              "topCandidates": [{}]}
    candidate = decode_response(orjson.dumps(answer({"text": "ac"}, result=result)), REQUEST,
                                "alias").candidates[0]
    assert candidate.logprobs == (TokenLogprob("a", 0.0), TokenLogprob("", -2.0),
                                  TokenLogprob("c", 0.0))


def test_without_logprobs_result_there_are_none() -> None:
    # Google sends avgLogprobs even when nobody asked; on its own it says nothing per token.
    document = answer({"text": "x"})
    document["candidates"][0]["avgLogprobs"] = -0.3
    assert decode_response(orjson.dumps(document), REQUEST, "alias").candidates[0].logprobs == ()


@pytest.mark.parametrize("result", [
    [], {"chosenCandidates": {}}, {"chosenCandidates": ["x"]},
    {"chosenCandidates": [{"token": 5}]}, {"chosenCandidates": [{"logProbability": "x"}]},
    {"chosenCandidates": [{"logProbability": True}]}, {"topCandidates": [[]]},
    {"topCandidates": [{"candidates": {}}]},
])
def test_an_unreadable_logprobs_result_is_an_unreadable_answer(result: object) -> None:
    with pytest.raises(UpstreamError, match="upstream"):
        decode_response(orjson.dumps(answer({"text": "x"}, result=result)), REQUEST, "alias")


# --- decoding a Gemini upstream's stream --------------------------------------------------


async def events_of(*chunks: dict[str, Any]) -> list[StreamEvent]:
    async def frames() -> AsyncIterator[SSEFrame]:
        for chunk in chunks:
            yield SSEFrame(orjson.dumps(chunk).decode())

    events = [event async for event in decode_stream(frames(), REQUEST, "alias")]
    assert isinstance(events[0], StreamStarted)
    return events[1:]


def one_step(token: str, logprob: float) -> dict[str, Any]:
    return {"chosenCandidates": [{"token": token, "logProbability": logprob}]}


async def test_stream_chunks_carry_the_tokens_of_their_increment() -> None:
    events = await events_of(
        answer({"text": "Hi"}, result=one_step("Hi", -0.5), finish=None, index=0),
        answer({"functionCall": {"name": "f", "args": {}, "id": "c1"}}, {"text": "!"},
               result=one_step("<call>", -0.25), finish=None, index=0),
        answer(result=one_step("<eos>", -0.75), index=0),
    )
    assert events == [
        PartDelta(TextPart("Hi"), 0, (TokenLogprob("Hi", -0.5),)),
        PartDelta(ToolCallPart("f", {}, "c1"), 0, (TokenLogprob("<call>", -0.25),)),
        PartDelta(TextPart("!"), 0),
        PartDelta(TextPart(""), 0, (TokenLogprob("<eos>", -0.75),)),  # no part, still kept
        CandidateFinished(FinishReason.STOP),
    ]


# --- encoding for a Gemini caller ---------------------------------------------------------


def response(*candidates: Candidate) -> GenerateResponse:
    return GenerateResponse("alias", candidates, Usage(3, 2), "resp-1", 1_750_000_000.0)


def test_an_answer_has_logprobs_result_and_avg_logprobs() -> None:
    body = encode_response(response(Candidate((TextPart("Hi there"),), FinishReason.STOP, 0,
                                              (HI, THERE))))
    candidate = orjson.loads(body)["candidates"][0]
    assert candidate["avgLogprobs"] == -1.0
    assert candidate["logprobsResult"] == {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.5},
                             {"token": " there", "logProbability": -1.5}],
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.5},
                            {"token": "Hello", "logProbability": -1.5}]},
            {"candidates": [{"token": "!", "logProbability": -0.25}]},
        ],
        "logProbabilitySum": -2.0,
    }
    sdk = types.GenerateContentResponse._from_response(response=orjson.loads(body), kwargs={})
    assert sdk.candidates is not None
    read = sdk.candidates[0]
    assert read.avg_logprobs == -1.0 and read.logprobs_result is not None
    assert [c.token for c in read.logprobs_result.chosen_candidates or []] == ["Hi", " there"]
    top = read.logprobs_result.top_candidates or []
    assert [c.log_probability for c in top[0].candidates or []] == [-0.5, -1.5]
    types.GenerateContentResponse.model_validate(orjson.loads(body))


def test_top_candidates_only_when_some_token_has_alternatives() -> None:
    plain = Candidate((TextPart("ok"),), FinishReason.STOP, 0,
                      (TokenLogprob("o", 0.0), TokenLogprob("k", -1.0)))
    candidate = orjson.loads(encode_response(response(plain)))["candidates"][0]
    assert candidate["logprobsResult"] == {
        "chosenCandidates": [{"token": "o", "logProbability": 0.0},
                             {"token": "k", "logProbability": -1.0}],
        "logProbabilitySum": -1.0}
    assert candidate["avgLogprobs"] == -0.5
    # One topCandidates entry per step, empty ({}) where a step has no alternatives.
    mixed = Candidate((TextPart("ok"),), FinishReason.STOP, 0, (HI, TokenLogprob("k", -1.0)))
    result = orjson.loads(encode_response(response(mixed)))["candidates"][0]["logprobsResult"]
    assert result["topCandidates"][1] == {}


def test_without_logprobs_the_fields_are_absent() -> None:
    body = encode_response(response(Candidate((TextPart("x"),), FinishReason.STOP)))
    candidate = orjson.loads(body)["candidates"][0]
    assert "logprobsResult" not in candidate and "avgLogprobs" not in candidate


def test_a_logprob_with_no_finite_value_is_a_number_still() -> None:
    entry = TokenLogprob("x", float("-inf"), (("y", float("nan")),))
    body = encode_response(response(Candidate((TextPart("x"),), FinishReason.STOP, 0, (entry,))))
    candidate = orjson.loads(body)["candidates"][0]
    assert candidate["logprobsResult"]["chosenCandidates"][0]["logProbability"] == -9999.0
    assert candidate["logprobsResult"]["topCandidates"][0]["candidates"][0][
        "logProbability"] == -9999.0
    assert candidate["avgLogprobs"] == -9999.0


STREAM: list[StreamEvent] = [
    StreamStarted("alias", "resp-1", 1_750_000_000.0),
    PartDelta(TextPart("Hi"), 0, (HI,)),
    PartDelta(TextPart(" there"), 0, (THERE,)),
    PartDelta(TextPart("!")),
    CandidateFinished(FinishReason.STOP),
    UsageReported(Usage(3, 3)),
]


def encoded_stream() -> bytes:
    encoder = GeminiStreamEncoder()
    return b"".join(piece for event in STREAM for piece in encoder.feed(event)) + b"".join(
        encoder.end())


def test_stream_chunks_carry_the_logprobs_of_their_increment() -> None:
    chunks = [orjson.loads(e[6:]) for e in encoded_stream().split(b"\r\n\r\n")[:-1]]
    parsed = [types.GenerateContentResponse._from_response(response=c, kwargs={})
              for c in chunks]
    results = [p.candidates[0].logprobs_result if p.candidates else None for p in parsed]
    assert [[c.token for c in r.chosen_candidates or []] if r else None for r in results] == [
        ["Hi"], [" there"], None, None]
    assert [p.candidates[0].avg_logprobs if p.candidates else None for p in parsed] == [
        -0.5, -1.5, None, None]


async def test_what_the_stream_encoder_writes_is_read_back() -> None:
    wire = encoded_stream()

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(wire), 7):
            yield wire[i:i + 7]

    events = [event async for event in decode_stream(decode_sse(pieces()), REQUEST, "alias")]
    assert events == STREAM


def test_an_answer_round_trips() -> None:
    sent = response(Candidate((TextPart("Hi there"),), FinishReason.STOP, 0, (HI, THERE)))
    assert decode_response(encode_response(sent), REQUEST, "alias").candidates == sent.candidates
