"""OpenAI chat.completion.chunk streams → canonical stream events."""

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
from cometgate.dialects.openai.upstream_request import decode_stream
from cometgate.dialects.openai.upstream_stream import EnumUnquoter
from cometgate.dialects.sse_decode import SSEDecoder, SSEFrame
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "openai"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))


def frames_of(body: bytes) -> list[SSEFrame]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


async def replay(frames: list[SSEFrame]) -> AsyncIterator[SSEFrame]:
    for frame in frames:
        yield frame


async def decode(
    body: bytes, request: GenerateRequest = REQUEST
) -> list[StreamEvent]:
    return [event async for event in decode_stream(replay(frames_of(body)), request, "alias")]


def fixture(name: str) -> bytes:
    return (WIRE / name).read_bytes()


async def test_text_stream() -> None:
    events = await decode(fixture("stream_text.sse"))
    started = events[0]
    assert isinstance(started, StreamStarted)
    assert started.model_version == "alias" and started.created == 1694268190.0
    assert "chatcmpl" not in started.response_id
    assert events[1:] == [
        PartDelta(TextPart("Hello")),
        PartDelta(TextPart(" wörld")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=9, output_tokens=3)),
    ]


async def test_tool_call_fragments_are_assembled_per_index() -> None:
    events = await decode(fixture("stream_tool_calls.sse"))
    assert events[1:] == [
        PartDelta(ToolCallPart("get_weather", {"location": "Paris, France"},
                               "call_DdmO9pD3xa9XTPNJ32zg2hcA")),
        PartDelta(ToolCallPart("get_weather", {"location": "Bogotá"}, "call_2nd")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=60, output_tokens=35)),
    ]


async def test_reasoning_stream_with_thoughts() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              thinking=ThinkingConfig(include_thoughts=True))
    events = await decode(fixture("stream_reasoning.sse"), request)
    assert events[1:] == [
        PartDelta(ReasoningPart("Think ")),
        PartDelta(ReasoningPart("briefly.")),
        PartDelta(TextPart("Hi")),
        PartDelta(TextPart("!")),
        CandidateFinished(FinishReason.MAX_TOKENS),
        UsageReported(Usage(prompt_tokens=20, output_tokens=5, thoughts_tokens=25,
                            cached_tokens=16)),
    ]


async def test_reasoning_hidden_without_include_thoughts() -> None:
    events = await decode(fixture("stream_reasoning.sse"))
    assert not any(isinstance(e, PartDelta) and isinstance(e.part, ReasoningPart)
                   for e in events)


async def test_enum_stream_is_unquoted_across_deltas() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              output=OutputFormat("enum", {"type": "string"}))
    events = await decode(fixture("stream_enum.sse"), request)
    text = "".join(e.part.text for e in events
                   if isinstance(e, PartDelta) and isinstance(e.part, TextPart))
    assert text == 'positivé\\""'
    assert events[-1] == CandidateFinished(FinishReason.STOP)


async def test_several_choices_finish_independently() -> None:
    events = await decode(fixture("stream_two_choices.sse"))
    assert events[1:] == [
        PartDelta(TextPart("A"), 0),
        PartDelta(TextPart("B"), 1),
        CandidateFinished(FinishReason.STOP, 1),
        PartDelta(TextPart("a"), 0),
        CandidateFinished(FinishReason.SAFETY, 0),
    ]


async def test_error_frame_mid_stream_raises_classified_error() -> None:
    stream = decode_stream(replay(frames_of(fixture("stream_error_midway.sse"))), REQUEST, "a")
    assert isinstance(await anext(stream), StreamStarted)
    assert await anext(stream) == PartDelta(TextPart("Partial"))
    with pytest.raises(UpstreamError) as caught:
        await anext(stream)
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.upstream_status == 503


@pytest.mark.parametrize(("frame", "failure"), [
    (b'data: {"error":{"message":"bad","type":"invalid_request_error","code":null}}\n\n',
     FailureClass.CALLER_FAULT),
    (b'data: {"error":{"message":"x","type":"server_error","code":null}}\n\n',
     FailureClass.TRANSIENT),
    (b'data: {"error":{"message":"slow down","code":429}}\n\n', FailureClass.RATE_LIMITED),
])
async def test_error_as_first_frame_fails_before_stream_started(
    frame: bytes, failure: FailureClass
) -> None:
    stream = decode_stream(replay(frames_of(frame)), REQUEST, "a")
    with pytest.raises(UpstreamError) as caught:
        await anext(stream)
    assert caught.value.failure_class is failure


@pytest.mark.parametrize("body", [
    b"",
    b'data: {"choices":[{"index":0,"delta":{"content":"half"},"finish_reason":null}]}\n\n',
])
async def test_early_eof_raises_transient_error(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="closed the stream early") as caught:
        await decode(body)
    assert caught.value.failure_class is FailureClass.TRANSIENT


async def test_eof_after_every_choice_finished_is_a_normal_end() -> None:
    body = (b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}],'
            b'"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n')
    events = await decode(body)
    assert events[1:] == [PartDelta(TextPart("x")), CandidateFinished(FinishReason.STOP),
                          UsageReported(Usage(1, 1))]


async def test_usage_repeated_on_every_chunk_is_reported_once() -> None:
    body = b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":%s}],'
        b'"usage":{"prompt_tokens":5,"completion_tokens":%d}}\n\n' % (reason, n)
        for n, reason in ((1, b"null"), (2, b'"stop"'))
    ) + b"data: [DONE]\n\n"
    usage = [e for e in await decode(body) if isinstance(e, UsageReported)]
    assert usage == [UsageReported(Usage(prompt_tokens=5, output_tokens=2))]


async def test_malformed_streamed_arguments() -> None:
    body = (b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
            b'"function":{"name":"f","arguments":"{\\"a\\":"}}]},"finish_reason":null}]}\n\n'
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
            b"data: [DONE]\n\n")
    assert (await decode(body))[1:] == [CandidateFinished(FinishReason.MALFORMED_TOOL_CALL)]


async def test_calls_without_index_are_told_apart_by_position() -> None:
    body = (b'data: {"choices":[{"index":0,"delta":{"tool_calls":['
            b'{"id":"a","function":{"name":"f","arguments":"{}"}},'
            b'{"id":"b","function":{"name":"g","arguments":{"x":1}}}]},'
            b'"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n')
    events = (await decode(body))[1:]
    # The second call's arguments come as an object rather than a JSON string: accepted.
    assert events == [PartDelta(ToolCallPart("f", {}, "a")),
                      PartDelta(ToolCallPart("g", {"x": 1}, "b")),
                      CandidateFinished(FinishReason.STOP)]


@pytest.mark.parametrize("body", [b"data: not json\n\n", b"data: [1]\n\n"])
async def test_unreadable_chunk(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="unreadable"):
        await decode(body)


@pytest.mark.parametrize(("pieces", "expected"), [
    (['"abc"'], "abc"),
    ([' ', ' "a', 'b"  trailing'], "ab"),
    (['"\\', 'n"'], "\n"),
    (['"\\u00', 'e9', '"'], "é"),
    (['"\\ud83d', '\\ude00"'], "😀"),
    (['"\\ud83d"'], "\ufffd"),
    (['"\\ud83d', '"'], "\ufffd"),
    (['"\\ud83d\\', 'n"'], "\ufffd\n"),
    (['"\\t\\/\\\\\\""'], '\t/\\"'),
    (["plain ", "text"], "plain text"),
])
def test_enum_unquoter(pieces: list[str], expected: str) -> None:
    unquoter = EnumUnquoter()
    assert "".join(unquoter.feed(piece) for piece in pieces) == expected
