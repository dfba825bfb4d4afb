"""Log probabilities in the OpenAI dialect: read from an upstream's completions and chunks,
written for callers in completions and chunks the openai SDK's own models accept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Message,
    OutputFormat,
    PartDelta,
    StreamEvent,
    StreamStarted,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.openai.caller_response import encode_chat_completion
from cometgate.dialects.openai.caller_stream import ChatChunkEncoder
from cometgate.dialects.openai.upstream_request import decode_response, decode_stream
from cometgate.dialects.sse_decode import SSEFrame

REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
HI = TokenLogprob("Hi", -0.01, (("Hi", -0.01), ("Hello", -4.6)))
THERE = TokenLogprob(" there", -0.25, (("é", -1.5),))


def wire_entry(token: str, logprob: float, *top: tuple[str, float]) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())}
                             for t, p in top]}


def completion(choice: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                         "model": "m", "choices": [choice]})


# --- decoding an upstream's whole completion ----------------------------------------------


def test_a_completion_carries_each_tokens_logprob_and_alternatives() -> None:
    body = completion({"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "Hi there"},
                       "logprobs": {"content": [wire_entry("Hi", -0.01, ("Hi", -0.01),
                                                           ("Hello", -4.6)),
                                                wire_entry(" there", -0.25, ("é", -1.5))],
                                    "refusal": None}})
    candidate = decode_response(body, REQUEST, "alias").candidates[0]
    assert candidate == Candidate((TextPart("Hi there"),), FinishReason.STOP, 0, (HI, THERE))


def test_refusal_tokens_follow_content_tokens() -> None:
    body = completion({"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": None, "refusal": "No."},
                       "logprobs": {"content": None,
                                    "refusal": [wire_entry("No", -0.5), wire_entry(".", 0)]}})
    candidate = decode_response(body, REQUEST, "alias").candidates[0]
    assert candidate.logprobs == (TokenLogprob("No", -0.5), TokenLogprob(".", 0.0))


@pytest.mark.parametrize("logprobs", [None, {}, {"content": None}, {"content": "x"}, []])
def test_no_logprobs_or_unreadable_ones_give_none(logprobs: object) -> None:
    body = completion({"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                       "message": {"role": "assistant", "content": "ok"}})
    assert decode_response(body, REQUEST, "alias").candidates[0].logprobs == ()


def test_an_entry_without_a_number_is_minus_infinity() -> None:
    body = completion({"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "ok"},
                       "logprobs": {"content": [{"token": "ok", "logprob": True,
                                                 "top_logprobs": [{"token": "x"}, "junk"]}]}})
    (entry,) = decode_response(body, REQUEST, "alias").candidates[0].logprobs
    assert entry == TokenLogprob("ok", float("-inf"), (("x", float("-inf")),))


# --- decoding an upstream's stream --------------------------------------------------------


def sse(*chunks: dict[str, Any], done: bool = True) -> list[SSEFrame]:
    frames = [SSEFrame(orjson.dumps({"id": "c", "object": "chat.completion.chunk",
                                     "created": 1, "model": "m", **chunk}).decode())
              for chunk in chunks]
    return [*frames, SSEFrame("[DONE]")] if done else frames


def choice(delta: dict[str, Any], logprobs: list[dict[str, Any]] | None = None,
           finish: str | None = None) -> dict[str, Any]:
    wire = None if logprobs is None else {"content": logprobs, "refusal": None}
    return {"choices": [{"index": 0, "delta": delta, "logprobs": wire,
                         "finish_reason": finish}]}


async def decoded(frames: list[SSEFrame],
                  request: GenerateRequest = REQUEST) -> list[StreamEvent]:
    async def replay() -> AsyncIterator[SSEFrame]:
        for frame in frames:
            yield frame

    events = [event async for event in decode_stream(replay(), request, "alias")]
    assert isinstance(events[0], StreamStarted)
    return events[1:]


async def test_text_deltas_carry_their_own_tokens() -> None:
    events = await decoded(sse(
        choice({"role": "assistant", "content": ""}),
        choice({"content": "Hi"}, [wire_entry("Hi", -0.01, ("Hi", -0.01), ("Hello", -4.6))]),
        choice({"content": " there"}, [wire_entry(" there", -0.25, ("é", -1.5))]),
        choice({}, finish="stop"),
    ))
    assert events == [PartDelta(TextPart("Hi"), 0, (HI,)),
                      PartDelta(TextPart(" there"), 0, (THERE,)),
                      CandidateFinished(FinishReason.STOP)]


async def test_tokens_of_tool_call_fragments_ride_on_the_call() -> None:
    fragment = {"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": '{"a":'}}
    events = await decoded(sse(
        choice({"tool_calls": [fragment]}, [wire_entry('{"a":', -0.1)]),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
               [wire_entry("1}", -0.2)]),
        choice({}, finish="tool_calls"),
    ))
    assert events == [
        PartDelta(ToolCallPart("f", {"a": 1}, "call_1"), 0,
                  (TokenLogprob('{"a":', -0.1), TokenLogprob("1}", -0.2))),
        CandidateFinished(FinishReason.STOP),
    ]


async def test_tokens_without_visible_text_wait_for_the_next_text() -> None:
    enum = GenerateRequest(model="a", messages=REQUEST.messages,
                           output=OutputFormat("enum", {"type": "string", "enum": ["yes"]}))
    events = await decoded(sse(
        choice({"content": '"'}, [wire_entry('"', -0.1)]),
        choice({"content": 'yes"'}, [wire_entry('yes"', -0.2)]),
        choice({}, finish="stop"),
    ), enum)
    assert events == [
        PartDelta(TextPart("yes"), 0, (TokenLogprob('"', -0.1), TokenLogprob('yes"', -0.2))),
        CandidateFinished(FinishReason.STOP),
    ]


async def test_tokens_left_at_the_finish_come_on_an_empty_text_delta() -> None:
    events = await decoded(sse(
        choice({"content": "Hi"}, [wire_entry("Hi", -0.01)]),
        choice({"content": ""}, [wire_entry("</s>", -0.3)], finish="stop"),
    ))
    assert events == [PartDelta(TextPart("Hi"), 0, (TokenLogprob("Hi", -0.01),)),
                      PartDelta(TextPart(""), 0, (TokenLogprob("</s>", -0.3),)),
                      CandidateFinished(FinishReason.STOP)]


async def test_tokens_left_when_done_comes_without_a_finish_are_not_lost() -> None:
    events = await decoded(sse(choice({"content": ""}, [wire_entry("x", -2.0)])))
    assert events == [PartDelta(TextPart(""), 0, (TokenLogprob("x", -2.0),))]


# --- encoding for an OpenAI caller --------------------------------------------------------


def encoded(candidate: Candidate) -> dict[str, Any]:
    response = GenerateResponse("fast", (candidate,), Usage(3, 2), "r1", 1_760_000_000.0)
    body = encode_chat_completion(response, "alias")
    parsed = ChatCompletion.model_validate_json(body)  # the SDK's own model accepts it
    logprobs = parsed.choices[0].logprobs
    assert logprobs is None or logprobs.content is not None
    document: dict[str, Any] = orjson.loads(body)
    return document


def test_a_completion_has_openais_logprobs_object() -> None:
    choice_body = encoded(Candidate((TextPart("Hi there"),), FinishReason.STOP, 0,
                                    (HI, THERE)))["choices"][0]
    assert choice_body["logprobs"] == {
        "content": [
            {"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": [
                {"token": "Hi", "logprob": -0.01, "bytes": [72, 105]},
                {"token": "Hello", "logprob": -4.6, "bytes": [72, 101, 108, 108, 111]}]},
            {"token": " there", "logprob": -0.25, "bytes": [32, 116, 104, 101, 114, 101],
             "top_logprobs": [{"token": "é", "logprob": -1.5, "bytes": [0xC3, 0xA9]}]},
        ],
        "refusal": None,
    }


def test_without_logprobs_the_field_is_null() -> None:
    assert encoded(Candidate((TextPart("x"),), FinishReason.STOP))["choices"][0][
        "logprobs"] is None


def test_a_logprob_with_no_finite_value_is_openais_very_unlikely() -> None:
    entry = TokenLogprob("x", float("-inf"), (("y", float("nan")),))
    content = encoded(Candidate((TextPart("x"),), FinishReason.STOP, 0, (entry,)))[
        "choices"][0]["logprobs"]["content"]
    assert content[0]["logprob"] == -9999.0
    assert content[0]["top_logprobs"][0]["logprob"] == -9999.0


def chunk_choices(events: list[StreamEvent]) -> list[dict[str, Any]]:
    encoder = ChatChunkEncoder("alias", include_usage=False)
    frames = [frame for event in events for frame in encoder.feed(event)] + encoder.end()
    choices = []
    for frame in frames[:-1]:
        ChatCompletionChunk.model_validate_json(frame[6:])
        choices.extend(orjson.loads(frame[6:])["choices"])
    return choices


def test_stream_chunks_carry_the_logprobs_of_their_delta() -> None:
    choices = chunk_choices([
        StreamStarted("fast", "r1", 1.0),
        PartDelta(TextPart("Hi"), 0, (HI,)),
        PartDelta(TextPart(" there")),
        PartDelta(TextPart(""), 0, (TokenLogprob("</s>", -0.3),)),
        PartDelta(ToolCallPart("f", {}, "call_1"), 0, (TokenLogprob("{}", -0.4),)),
        CandidateFinished(FinishReason.STOP),
    ])
    deltas = [(c["delta"], c["logprobs"]) for c in choices]
    assert deltas[0] == ({"role": "assistant", "content": ""}, None)
    assert deltas[1][0] == {"content": "Hi"}
    assert deltas[1][1]["content"][0]["top_logprobs"][1]["token"] == "Hello"
    assert deltas[2] == ({"content": " there"}, None)
    # Tokens with no visible text still reach the caller, in a chunk of their own.
    assert deltas[3] == ({"content": ""}, {"content": [
        {"token": "</s>", "logprob": -0.3, "bytes": list(b"</s>"), "top_logprobs": []}],
        "refusal": None})
    assert "tool_calls" in deltas[4][0]
    assert [e["token"] for e in deltas[4][1]["content"]] == ["{}"]
    assert deltas[5] == ({}, None)


def test_an_upstream_answer_round_trips_to_an_openai_caller() -> None:
    body = completion({"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "Hi there"},
                       "logprobs": {"content": [wire_entry("Hi", -0.01, ("Hi", -0.01),
                                                           ("Hello", -4.6)),
                                                wire_entry(" there", -0.25, ("é", -1.5))],
                                    "refusal": None}})
    response = decode_response(body, REQUEST, "alias")
    assert encoded(response.candidates[0])["choices"][0]["logprobs"] == orjson.loads(body)[
        "choices"][0]["logprobs"]
