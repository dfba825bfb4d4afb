"""Gemini `:streamGenerateContent?alt=sse` events → canonical stream events: recorded shapes,
what the stream encoder writes, errors mid-stream and streams cut short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    Message,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.gemini.caller_stream import GeminiStreamEncoder
from cometgate.dialects.gemini.upstream_response import decode_response, decode_stream
from cometgate.dialects.sse_decode import SSEFrame, decode_sse
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "gemini"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
CREATED = 1750000000.123456


async def frames_of(*chunks: Any) -> AsyncIterator[SSEFrame]:
    for chunk in chunks:
        yield SSEFrame(chunk if isinstance(chunk, str) else orjson.dumps(chunk).decode())


async def events_of(*chunks: Any) -> list[StreamEvent]:
    return [event async for event in decode_stream(frames_of(*chunks), REQUEST, "alias")]


def chunk(*parts: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None,
          index: int | None = 0) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    if index is not None:
        candidate["index"] = index
    document: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash",
                                "responseId": "ictQaOn0MeeDmNAP8OOwqA0"}
    if usage is not None:
        document["usageMetadata"] = usage
    return document


async def test_recorded_stream_of_text_a_call_and_usage() -> None:
    events = await events_of(
        chunk({"text": "**Checking**", "thought": True},
              usage={"promptTokenCount": 8, "totalTokenCount": 8}),
        chunk({"text": "The"}, usage={"promptTokenCount": 8, "totalTokenCount": 8}),
        chunk({"text": " weather:"}, usage={"promptTokenCount": 8, "candidatesTokenCount": 3,
                                            "totalTokenCount": 11}),
        chunk({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
               "thoughtSignature": "c2ln"},
              {"text": "", "thoughtSignature": "AQI="}, finish="STOP",
              usage={"promptTokenCount": 8, "candidatesTokenCount": 9,
                     "thoughtsTokenCount": 20, "totalTokenCount": 37}),
    )
    started = events[0]
    assert isinstance(started, StreamStarted)
    assert (started.model_version, started.response_id) == ("alias", "ictQaOn0MeeDmNAP8OOwqA0")
    call = events[4]
    assert isinstance(call, PartDelta) and isinstance(call.part, ToolCallPart)
    assert events[1:] == [
        PartDelta(ReasoningPart("**Checking**")),
        PartDelta(TextPart("The")),
        PartDelta(TextPart(" weather:")),
        PartDelta(ToolCallPart("get_weather", {"city": "Paris"}, call.part.call_id, b"sig")),
        PartDelta(TextPart("", b"\x01\x02")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=8, output_tokens=9, thoughts_tokens=20)),
    ]
    # The id the whole answer would have given the same call.
    whole = decode_response(orjson.dumps(chunk(
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})), REQUEST, "alias")
    assert whole.candidates[0].parts[0] == ToolCallPart(
        "get_weather", {"city": "Paris"}, call.part.call_id)


async def test_what_the_stream_encoder_writes_is_read_back() -> None:
    sent: list[StreamEvent] = [
        StreamStarted("alias", "resp-1", CREATED),
        PartDelta(ReasoningPart("hmm", b"s")), PartDelta(TextPart("Hel")),
        PartDelta(TextPart("lo"), 1), PartDelta(ToolCallPart("f", {"x": 1}, "c1"), 1),
        CandidateFinished(FinishReason.STOP), CandidateFinished(FinishReason.MAX_TOKENS, 1),
        UsageReported(Usage(prompt_tokens=8, output_tokens=5, thoughts_tokens=3)),
    ]
    encoder = GeminiStreamEncoder()
    wire = b"".join(piece for event in sent for piece in encoder.feed(event)) + b"".join(
        encoder.end())
    assert await read_wire(wire) == sent


async def test_the_golden_stream_is_read() -> None:
    events = await read_wire((WIRE / "simple.stream.txt").read_bytes())
    assert events == [
        StreamStarted("alias", "resp-1", CREATED),
        PartDelta(ReasoningPart("hmm")), PartDelta(TextPart("Hel")), PartDelta(TextPart("lo")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=8, output_tokens=5, thoughts_tokens=3)),
    ]


async def read_wire(wire: bytes) -> list[StreamEvent]:
    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(wire), 7):  # cut anywhere, as the network does
            yield wire[i:i + 7]

    return [event async for event in decode_stream(decode_sse(pieces()), REQUEST, "alias")]


async def test_a_blocked_prompt_in_a_stream() -> None:
    events = await events_of({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                              "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
                              "responseId": "b"})
    assert events[1:] == [CandidateFinished(FinishReason.SAFETY),
                          UsageReported(Usage(prompt_tokens=5))]


async def test_usage_reported_once_with_the_last_value_seen() -> None:
    events = await events_of(
        chunk({"text": "a"}, usage={"promptTokenCount": 3}),
        chunk({"text": "b"}, finish="STOP"),  # a last chunk without usage
    )
    assert [e for e in events if isinstance(e, UsageReported)] == [
        UsageReported(Usage(prompt_tokens=3))]
    assert isinstance(events[-1], UsageReported)


async def test_a_repeated_finish_is_reported_once() -> None:
    events = await events_of(chunk({"text": "a"}, finish="STOP"),
                             chunk({"text": ""}, finish="STOP"))
    assert [e for e in events if isinstance(e, CandidateFinished)] == [
        CandidateFinished(FinishReason.STOP)]


@pytest.mark.parametrize(("error", "failure_class", "http_status"), [
    ({"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"},
     FailureClass.TRANSIENT, 503),
    ({"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"},
     FailureClass.RATE_LIMITED, 429),
    ({"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"},
     FailureClass.CALLER_FAULT, 400),
])
async def test_an_error_event_mid_stream_raises_after_what_came_before(
        error: dict[str, Any], failure_class: FailureClass, http_status: int) -> None:
    received: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as caught:
        async for event in decode_stream(
                frames_of(chunk({"text": "Hel"}), {"error": error}, chunk({"text": "lo"})),
                REQUEST, "alias"):
            received.append(event)
    assert received[1:] == [PartDelta(TextPart("Hel"))]
    assert caught.value.failure_class is failure_class
    assert caught.value.http_status == http_status


@pytest.mark.parametrize("chunks", [
    (),
    (chunk({"text": "Hel"}, usage={"promptTokenCount": 3}),),
    # Two candidates, only one finished.
    ({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
                     {"content": {"parts": [{"text": "b"}]}, "index": 1}]},),
], ids=["empty", "no-finish", "one-of-two-finished"])
async def test_a_truncated_stream_is_a_transient_failure(chunks: tuple[Any, ...]) -> None:
    with pytest.raises(UpstreamError) as caught:
        await events_of(*chunks)
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.http_status == 503


async def test_an_unreadable_chunk_is_a_transient_failure() -> None:
    with pytest.raises(UpstreamError) as caught:
        await events_of(chunk({"text": "a"}), "[DONE]")
    assert caught.value.failure_class is FailureClass.TRANSIENT
