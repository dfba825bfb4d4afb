"""Anthropic Messages SSE streams → canonical stream events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    Message,
    OutputFormat,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.anthropic.envelope import thinking_block, unpack
from cometgate.dialects.anthropic.upstream_stream import decode_stream
from cometgate.dialects.sse_decode import SSEDecoder, SSEFrame
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "anthropic"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
GCD_THINKING = ("I need to find the GCD of 1071 and 462 using the Euclidean algorithm.\n\n"
                "1071 = 2 x 462 + 147\n462 = 3 x 147 + 21\n147 = 7 x 21 + 0\n\nSo GCD is 21.")


def frames_of(body: bytes, piece: int = 0) -> list[SSEFrame]:
    decoder = SSEDecoder()
    if not piece:
        return decoder.feed(body) + decoder.close()
    frames = [f for start in range(0, len(body), piece)
              for f in decoder.feed(body[start:start + piece])]
    return frames + decoder.close()


async def replay(frames: list[SSEFrame]) -> AsyncIterator[SSEFrame]:
    for frame in frames:
        yield frame


async def decode(body: bytes, request: GenerateRequest = REQUEST,
                 piece: int = 0) -> list[StreamEvent]:
    return [e async for e in decode_stream(replay(frames_of(body, piece)), request, "alias")]


def fixture(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def sse(*events: str) -> bytes:
    return "".join(f"event: x\ndata: {data}\n\n" for data in events).encode()


START = ('{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
         '"content":[],"model":"m","usage":{"input_tokens":3,"output_tokens":1}}}')
STOP = '{"type":"message_stop"}'


@pytest.mark.parametrize("piece", [0, 7])
async def test_text_stream(piece: int) -> None:
    events = await decode(fixture("stream_text.sse"), piece=piece)
    started = events[0]
    assert isinstance(started, StreamStarted) and started.model_version == "alias"
    assert "msg_" not in started.response_id
    assert events[1:] == [
        PartDelta(TextPart("Hello")),
        PartDelta(TextPart("! Grüße 👋")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=35, output_tokens=15, cached_tokens=10)),
    ]


async def test_tool_use_stream_assembles_fragments() -> None:
    events = await decode(fixture("stream_tool_use.sse"))
    assert events[1:] == [
        PartDelta(TextPart("Okay, let's check the weather for San Francisco, CA:")),
        PartDelta(ToolCallPart("get_weather",
                               {"location": "San Francisco, CA", "unit": "fahrenheit"},
                               "toolu_01T1x1fJ34qAmk2tNTrN7Up6")),
        PartDelta(ToolCallPart("get_time", {}, "toolu_02Ux2gK45rBnl3uOUsO8Vq7")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=472, output_tokens=89)),
    ]


async def test_hidden_thinking_rides_on_the_first_text_increment() -> None:
    events = await decode(fixture("stream_thinking.sse"))
    text = events[1]
    assert isinstance(text, PartDelta) and isinstance(text.part, TextPart)
    assert text.part.text == "The greatest common divisor of 1071 and 462 is **21**."
    assert unpack(text.part.signature) == (thinking_block(GCD_THINKING, (
        "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds2Ll3dSkU2M9xLZ+0T2bV8D3wLAJNcKBSd"
        "RTQ1Y=")),)
    assert events[2:] == [CandidateFinished(FinishReason.STOP),
                          UsageReported(Usage(prompt_tokens=40, output_tokens=120))]


async def test_shown_thinking_streams_increments_then_its_signature() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              thinking=ThinkingConfig(include_thoughts=True))
    events = await decode(fixture("stream_thinking.sse"), request)
    reasoning = [e.part for e in events if isinstance(e, PartDelta)
                 and isinstance(e.part, ReasoningPart)]
    assert "".join(r.text for r in reasoning) == GCD_THINKING
    assert [r.signature is not None for r in reasoning] == [False, False, True]
    assert reasoning[-1].text == ""
    assert unpack(reasoning[-1].signature)[0]["thinking"] == GCD_THINKING  # type: ignore[index]
    text = events[4]
    assert isinstance(text, PartDelta) and text.part == TextPart(
        "The greatest common divisor of 1071 and 462 is **21**.")


async def test_error_event_midway_is_classified() -> None:
    events: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as raised:
        async for event in decode_stream(replay(frames_of(fixture("stream_error_midway.sse"))),
                                         REQUEST, "alias"):
            events.append(event)
    assert raised.value.failure_class is FailureClass.TRANSIENT
    assert raised.value.upstream_status == 529 and raised.value.http_status == 503
    # The prompt tokens message_start reported were spent: they are reported before the error.
    assert events[1:] == [PartDelta(TextPart("Once upon")),
                          UsageReported(Usage(prompt_tokens=12, output_tokens=1))]


async def test_error_event_in_place_of_message_start_fails_before_anything() -> None:
    body = sse('{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}')
    events: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as raised:
        async for event in decode_stream(replay(frames_of(body)), REQUEST, "a"):
            events.append(event)
    assert events == []
    assert raised.value.failure_class is FailureClass.CALLER_FAULT
    assert raised.value.message == "bad"


async def test_early_end_of_stream_is_transient() -> None:
    body = fixture("stream_text.sse").split(b"event: message_delta")[0]
    with pytest.raises(UpstreamError) as raised:
        await decode(body)
    assert raised.value.failure_class is FailureClass.TRANSIENT


async def test_malformed_tool_arguments_finish_as_malformed() -> None:
    body = sse(START,
               '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use",'
               '"id":"t","name":"f","input":{}}}',
               '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
               '"partial_json":"{\\"a\\": "}}',
               '{"type":"content_block_stop","index":0}',
               '{"type":"message_delta","delta":{"stop_reason":"tool_use"},'
               '"usage":{"output_tokens":4}}', STOP)
    events = await decode(body)
    assert events[1:] == [CandidateFinished(FinishReason.MALFORMED_TOOL_CALL),
                          UsageReported(Usage(prompt_tokens=3, output_tokens=4))]


async def test_json_output_stream_becomes_text_at_block_stop() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              output=OutputFormat("enum", {"type": "string",
                                                           "enum": ["yes", "no"]}))
    body = sse(START,
               '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use",'
               '"id":"t","name":"respond","input":{}}}',
               '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
               '"partial_json":"{\\"value\\": \\"y"}}',
               '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
               '"partial_json":"es\\"}"}}',
               '{"type":"content_block_stop","index":0}',
               '{"type":"message_delta","delta":{"stop_reason":"tool_use"},'
               '"usage":{"output_tokens":4}}', STOP)
    events = await decode(body, request)
    assert events[1:3] == [PartDelta(TextPart("yes")), CandidateFinished(FinishReason.STOP)]


async def test_unknown_events_are_skipped_and_missing_stop_reason_is_other() -> None:
    body = sse(START, '{"type":"brand_new_event","x":1}', STOP)
    events = await decode(body)
    assert events[1:] == [CandidateFinished(FinishReason.OTHER),
                          UsageReported(Usage(prompt_tokens=3, output_tokens=1))]


@pytest.mark.parametrize("data", ["not json", "[1]",
                                  '{"type":"content_block_start","content_block":{}}'])
async def test_unreadable_events(data: str) -> None:
    with pytest.raises(UpstreamError) as raised:
        await decode(sse(START, data))
    assert raised.value.failure_class is FailureClass.TRANSIENT
