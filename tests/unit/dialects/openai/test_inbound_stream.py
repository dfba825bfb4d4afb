"""Canonical stream events → OpenAI chat.completion.chunk SSE frames, byte for byte, and read
back by the openai SDK's own stream parser."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from cometgate.canonical import (
    BlobPart,
    CandidateFinished,
    FinishReason,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.openai.caller_stream import ChatChunkEncoder
from cometgate.errors import FailureClass, RateLimited, UpstreamError, UpstreamUnavailable

from .sdk_client import answering, sdk_client

STARTED = StreamStarted(model_version="fast", response_id="abc", created=1_760_000_000.5)
USAGE = Usage(prompt_tokens=10, output_tokens=7, thoughts_tokens=3, cached_tokens=4)
SCRIPT: list[StreamEvent] = [
    STARTED,
    PartDelta(ReasoningPart("Think.")),
    PartDelta(TextPart("Hel")),
    PartDelta(TextPart("")),  # nothing to say: no frame
    PartDelta(TextPart("lo")),
    PartDelta(ToolCallPart("get_weather", {"city": "Paris"}, "call_1")),
    CandidateFinished(FinishReason.STOP),
    UsageReported(USAGE),
]
HEAD = ('{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1760000000,'
        '"model":"my-alias","system_fingerprint":null,"choices":')


def run(events: list[StreamEvent], *, include_usage: bool) -> list[bytes]:
    encoder = ChatChunkEncoder("my-alias", include_usage=include_usage)
    frames = [frame for event in events for frame in encoder.feed(event)]
    return frames + encoder.end()


def frame(choices: str, usage: str = "null") -> bytes:
    return f'data: {HEAD}{choices},"usage":{usage}}}\n\n'.encode()


def delta(body: str, finish: str = "null", index: int = 0) -> str:
    return (f'[{{"index":{index},"delta":{body},"logprobs":null,'
            f'"finish_reason":{finish}}}]')


def chunks(frames: list[bytes]) -> list[dict[str, Any]]:
    """Every frame but [DONE], parsed and checked against the SDK's chunk model."""
    parsed = []
    for item in frames:
        assert item.startswith(b"data: ") and item.endswith(b"\n\n")
        assert item.count(b"\n") == 2
        if item != b"data: [DONE]\n\n":
            ChatCompletionChunk.model_validate_json(item[6:])
            parsed.append(orjson.loads(item[6:]))
    return parsed


def test_scripted_stream_exact_frames_with_usage() -> None:
    frames = run(SCRIPT, include_usage=True)
    tool_call = ('{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":'
                 '{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]}')
    assert frames == [
        frame(delta('{"role":"assistant","content":""}')),
        frame(delta('{"reasoning_content":"Think."}')),
        frame(delta('{"content":"Hel"}')),
        frame(delta('{"content":"lo"}')),
        frame(delta(tool_call)),
        frame(delta("{}", '"tool_calls"')),
        frame("[]", '{"prompt_tokens":10,"completion_tokens":10,"total_tokens":20,'
                    '"prompt_tokens_details":{"cached_tokens":4},'
                    '"completion_tokens_details":{"reasoning_tokens":3}}'),
        b"data: [DONE]\n\n",
    ]
    assert len(chunks(frames)) == 7


def test_without_include_usage_there_is_no_usage_at_all() -> None:
    frames = run(SCRIPT, include_usage=False)
    parsed = chunks(frames)
    assert all("usage" not in chunk for chunk in parsed)
    assert all(chunk["choices"] for chunk in parsed)
    assert frames[-1] == b"data: [DONE]\n\n"
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_usage_chunk_only_when_usage_was_reported() -> None:
    frames = run([STARTED, PartDelta(TextPart("hi")), CandidateFinished(FinishReason.STOP)],
                 include_usage=True)
    parsed = chunks(frames)
    assert all(chunk["usage"] is None for chunk in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_calls_without_ids_get_stable_ids_and_running_indexes_per_choice() -> None:
    events: list[StreamEvent] = [
        STARTED,
        PartDelta(ToolCallPart("f", {"n": 1}), 0),
        PartDelta(ToolCallPart("g", {}), 1),
        PartDelta(ToolCallPart("f", {"n": 2}), 0),
        CandidateFinished(FinishReason.STOP, 0),
        CandidateFinished(FinishReason.MAX_TOKENS, 1),
    ]
    parsed = chunks(run(events, include_usage=False))
    calls = [(c["choices"][0]["index"], c["choices"][0]["delta"]["tool_calls"][0])
             for c in parsed if "tool_calls" in c["choices"][0]["delta"]]
    assert [(choice, call["index"], call["function"]["name"]) for choice, call in calls] == [
        (0, 0, "f"), (1, 0, "g"), (0, 1, "f")]
    assert all(call["id"].startswith("call_") for _, call in calls)
    assert len({call["id"] for _, call in calls}) == 3
    again = chunks(run(events, include_usage=False))
    assert [c["choices"][0]["delta"].get("tool_calls") for c in again] == [
        c["choices"][0]["delta"].get("tool_calls") for c in parsed]
    roles = [c["choices"][0]["index"] for c in parsed
             if c["choices"][0]["delta"].get("role") == "assistant"]
    assert roles == [0, 1]
    finishes = [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in parsed
                if c["choices"][0]["finish_reason"]]
    assert finishes == [(0, "tool_calls"), (1, "length")]


def test_a_choice_that_only_finishes_still_opens_with_the_role() -> None:
    parsed = chunks(run([STARTED, PartDelta(BlobPart("image/png", b"x")),
                         CandidateFinished(FinishReason.SAFETY)], include_usage=False))
    assert [c["choices"][0]["delta"] for c in parsed] == [
        {"role": "assistant", "content": ""}, {}]
    assert parsed[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_the_sdk_stream_helper_assembles_the_completion() -> None:
    body = b"".join(run(SCRIPT, include_usage=True))
    client = sdk_client(answering(200, body, "text/event-stream"))
    with client.chat.completions.stream(
        model="my-alias", messages=[{"role": "user", "content": "hi"}],
        stream_options={"include_usage": True},
    ) as stream:
        completion = stream.get_final_completion()
    assert completion.id == "chatcmpl-abc"
    message = completion.choices[0].message
    assert message.content == "Hello"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None and completion.usage.total_tokens == 20


# --- failures ----------------------------------------------------------------------------------


def test_fail_sends_one_error_frame_and_no_done() -> None:
    encoder = ChatChunkEncoder("my-alias", include_usage=True)
    encoder.feed(STARTED)
    frames = encoder.fail(UpstreamUnavailable("no upstream could answer"))
    assert frames == [b'data: {"error":{"message":"no upstream could answer",'
                      b'"type":"service_unavailable_error","param":null,"code":null}}\n\n']


def test_fail_relays_an_upstream_openai_error_on_one_line() -> None:
    native = b'{\n  "error": {\n    "message": "context too long",\n    "type": ' \
             b'"invalid_request_error",\n    "param": "messages",\n    "code": ' \
             b'"context_length_exceeded"\n  }\n}\n'
    error = UpstreamError("context too long", failure_class=FailureClass.CALLER_FAULT,
                          http_status=400)
    error.native_body = ("openai", native)
    [only] = ChatChunkEncoder("m", include_usage=False).fail(error)
    assert only.count(b"\n") == 2
    assert orjson.loads(only[6:]) == orjson.loads(native)


@pytest.mark.parametrize("error", [RateLimited("slow down", retry_after=2.0)])
def test_fail_before_anything_was_sent(error: RateLimited) -> None:
    [only] = ChatChunkEncoder("m", include_usage=False).fail(error)
    assert orjson.loads(only[6:])["error"]["code"] == "rate_limit_exceeded"
