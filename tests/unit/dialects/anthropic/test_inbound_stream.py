"""Canonical stream events → Anthropic Messages SSE frames, read back by the anthropic SDK."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pydantic
import pytest
from tests.unit.dialects.anthropic.anthropic_sdk import client, sse_answer

from cometgate.canonical import (
    BlobPart,
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    Message,
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
from cometgate.dialects.anthropic.caller_stream import MessageStreamEncoder
from cometgate.dialects.anthropic.caller_thinking import NEXT, OWN
from cometgate.dialects.anthropic.envelope import pack, redacted_block, thinking_block
from cometgate.dialects.anthropic.upstream_stream import decode_stream
from cometgate.dialects.sse_decode import SSEDecoder, SSEFrame
from cometgate.errors import RateLimited, UpstreamUnavailable

WIRE = Path(__file__).resolve().parents[3] / "wire" / "anthropic"
EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
STARTED = StreamStarted("alias", "r-1", 1_700_000_000.0)


def run(events: list[StreamEvent], *, end: bool = True) -> list[bytes]:
    encoder = MessageStreamEncoder("claude-alias")
    frames = [frame for event in events for frame in encoder.feed(event)]
    return frames + (encoder.end() if end else [])


def payloads(frames: list[bytes]) -> list[dict[str, Any]]:
    """Each frame's JSON, checked to be exactly `event: <its type>` + one data line."""
    found = []
    for frame in frames:
        head, data, blank = frame.split(b"\n", 2)
        payload: dict[str, Any] = orjson.loads(data.removeprefix(b"data: "))
        assert head == b"event: " + payload["type"].encode() and blank == b"\n"
        if payload["type"] not in ("ping", "error"):  # the SDK handles these two itself
            EVENT.validate_python(payload)  # one of the SDK's stream event models
        found.append(payload)
    return found


def final_message(frames: list[bytes]) -> anthropic.types.Message:
    sdk = client(sse_answer(frames))
    with sdk.messages.stream(model="claude-alias", max_tokens=100,
                             messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


def text_of(block: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = block.model_dump(exclude_none=True)
    return dumped


async def replay(body: bytes) -> AsyncIterator[SSEFrame]:
    decoder = SSEDecoder()
    for frame in decoder.feed(body) + decoder.close():
        yield frame


async def from_upstream(name: str) -> list[StreamEvent]:
    request = GenerateRequest("alias", (Message("user", (TextPart("hi"),)),),
                              thinking=ThinkingConfig(include_thoughts=True, budget=2048))
    body = (WIRE / name).read_bytes()
    return [event async for event in decode_stream(replay(body), request, "alias")]


def test_text_stream_exact_frames() -> None:
    frames = run([STARTED, PartDelta(TextPart("Hel")), PartDelta(TextPart("lo")),
                  CandidateFinished(FinishReason.STOP), UsageReported(Usage(12, 2))])
    usage_zero = {"input_tokens": 0, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 0}
    assert frames == [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_r-1",'
        b'"type":"message","role":"assistant","model":"claude-alias","content":[],'
        b'"stop_reason":null,"stop_sequence":null,"usage":' + orjson.dumps(usage_zero)
        + b"}}\n\n",
        b'event: ping\ndata: {"type":"ping"}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hel"}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"lo"}}\n\n',
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        b'"end_turn","stop_sequence":null},"usage":{"input_tokens":12,'
        b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    payloads(frames)
    message = final_message(frames)
    assert [text_of(b) for b in message.content] == [{"type": "text", "text": "Hello"}]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn", 12, 2)


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_thinking.sse",
                                  "stream_tool_use.sse"])
async def test_an_anthropic_upstreams_stream_reaches_the_caller_as_the_same_message(
        name: str) -> None:
    original = final_message([(WIRE / name).read_bytes()])
    frames = run(await from_upstream(name))
    kinds = [p["type"] for p in payloads(frames)]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == ["message_delta",
                                                                     "message_stop"]
    assert kinds.count("ping") == 1
    mine = final_message(frames)
    assert [text_of(b) for b in mine.content] == [text_of(b) for b in original.content]
    assert mine.stop_reason == original.stop_reason
    assert mine.usage.output_tokens == original.usage.output_tokens


async def test_thinking_streams_increments_then_one_signature_delta() -> None:
    deltas = [p["delta"] for p in payloads(run(await from_upstream("stream_thinking.sse")))
              if p["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["thinking_delta", "thinking_delta",
                                           "signature_delta", "text_delta"]


def test_a_tool_call_is_one_block_with_its_whole_input() -> None:
    frames = run([STARTED, PartDelta(TextPart("Checking.")),
                  PartDelta(ToolCallPart("get_weather", {"city": "Lima"})),
                  PartDelta(ToolCallPart("get_time", {}, "toolu_own")),
                  CandidateFinished(FinishReason.STOP), UsageReported(Usage(40, 9, 3, 30))])
    found = payloads(frames)
    starts = [p["content_block"] for p in found if p["type"] == "content_block_start"]
    assert starts[0] == {"type": "text", "text": ""}
    assert starts[1]["type"] == "tool_use" and starts[1]["id"].startswith("toolu_")
    assert starts[2] == {"type": "tool_use", "id": "toolu_own", "name": "get_time", "input": {}}
    assert [p["delta"] for p in found if p["type"] == "content_block_delta"][1:] == [
        {"type": "input_json_delta", "partial_json": '{"city":"Lima"}'},
        {"type": "input_json_delta", "partial_json": "{}"}]
    delta = next(p for p in found if p["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 30, "output_tokens": 12}
    message = final_message(frames)
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("text", None), ("tool_use", {"city": "Lima"}), ("tool_use", {})]


def test_other_models_signatures_stream_as_thinking_blocks() -> None:
    own, carried = b"\x01thought", b"\x02call"
    frames = run([STARTED, PartDelta(ReasoningPart("Let me")),
                  PartDelta(ReasoningPart(" think", own)),
                  PartDelta(ToolCallPart("f", {}, "toolu_1", carried)),
                  PartDelta(TextPart("ok", carried)), CandidateFinished(FinishReason.STOP)])
    payloads(frames)
    content = [text_of(b) for b in final_message(frames).content]
    b64 = base64.b64encode
    assert content == [
        {"type": "thinking", "thinking": "Let me think", "signature": OWN + b64(own).decode()},
        {"type": "thinking", "thinking": "", "signature": NEXT + b64(carried).decode()},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        {"type": "thinking", "thinking": "", "signature": NEXT + b64(carried).decode()},
        {"type": "text", "text": "ok"},
    ]


def test_hidden_thinking_carried_on_text_is_sent_whole_before_it() -> None:
    carried = pack([thinking_block("deep", "SIG"), redacted_block("opaque")])
    frames = run([STARTED, PartDelta(TextPart("answer", carried)),
                  PartDelta(BlobPart("image/png", b"\x89PNG")),
                  CandidateFinished(FinishReason.STOP)])
    payloads(frames)
    assert [text_of(b) for b in final_message(frames).content] == [
        {"type": "thinking", "thinking": "deep", "signature": "SIG"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "answer"},
    ]


def test_unsigned_reasoning_stays_one_open_block_until_the_kind_changes() -> None:
    found = payloads(run([STARTED, PartDelta(ReasoningPart("a")), PartDelta(ReasoningPart("b")),
                          PartDelta(TextPart("c")), CandidateFinished(FinishReason.STOP)]))
    assert [(p["type"], p.get("index")) for p in found[2:-2]] == [
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_delta", 0),
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1),
        ("content_block_stop", 1)]


def test_only_candidate_zero_is_streamed_and_a_missing_start_is_supplied() -> None:
    frames = run([PartDelta(TextPart("zero")), PartDelta(TextPart("one"), index=1),
                  CandidateFinished(FinishReason.MAX_TOKENS),
                  CandidateFinished(FinishReason.SAFETY, index=1)])
    message = final_message(frames)
    assert message.id.startswith("msg_")
    assert [text_of(b) for b in message.content] == [{"type": "text", "text": "zero"}]
    assert message.stop_reason == "max_tokens"


def test_an_empty_stream_is_still_a_whole_message() -> None:
    encoder = MessageStreamEncoder("claude-alias")
    frames = encoder.end()
    assert [p["type"] for p in payloads(frames)] == ["message_start", "ping", "message_delta",
                                                     "message_stop"]
    assert final_message(frames).content == []
    assert encoder.end() == [] and encoder.feed(PartDelta(TextPart("late"))) == []


def test_fail_sends_anthropics_error_event_and_the_sdk_raises_it() -> None:
    encoder = MessageStreamEncoder("claude-alias")
    frames = encoder.feed(STARTED) + encoder.feed(PartDelta(TextPart("partial")))
    frames += encoder.fail(UpstreamUnavailable("no upstream could answer"))
    assert frames[-1] == (b'event: error\ndata: {"type":"error","error":{"type":'
                          b'"overloaded_error","message":"no upstream could answer"}}\n\n')
    assert encoder.end() == [] and encoder.fail(RateLimited("x")) == []
    with pytest.raises(anthropic.APIStatusError) as raised:
        final_message(frames)
    assert raised.value.body == {"type": "error", "error": {
        "type": "overloaded_error", "message": "no upstream could answer"}}


def test_a_relayed_multi_line_error_body_is_sent_on_one_line() -> None:
    error = UpstreamUnavailable("x")
    error.native_body = ("anthropic", b'{\n  "type": "error",\n  "error": {"type": '
                                      b'"api_error", "message": "boom"}\n}')
    (frame,) = MessageStreamEncoder("m").fail(error)
    head, data, rest = frame.split(b"\n", 2)
    assert head == b"event: error" and rest == b"\n"
    assert orjson.loads(data.removeprefix(b"data: "))["error"]["message"] == "boom"
