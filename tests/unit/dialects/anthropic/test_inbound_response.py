"""Canonical responses → Anthropic `message` objects, read back by the anthropic SDK."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest
from tests.unit.dialects.anthropic.anthropic_sdk import client, json_answer, sent_body

from cometgate.canonical import (
    BlobPart,
    Candidate,
    FileRefPart,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.anthropic.caller_request import decode_messages_request
from cometgate.dialects.anthropic.caller_response import encode_count_tokens, encode_message
from cometgate.dialects.anthropic.caller_thinking import NEXT, OWN
from cometgate.dialects.anthropic.upstream_request import encode_request
from cometgate.dialects.anthropic.upstream_response import decode_response

WIRE = Path(__file__).resolve().parents[3] / "wire" / "anthropic"
WEATHER_TOOL = {"name": "get_weather",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}


def response(*parts: Part, reason: FinishReason | None = FinishReason.STOP,
             usage: Usage | None = None, response_id: str = "r-1") -> GenerateResponse:
    return GenerateResponse("alias", (Candidate(parts, reason),), usage or Usage(10, 5),
                            response_id, 1_700_000_000.0)


def encoded(answer: GenerateResponse) -> dict[str, Any]:
    body = encode_message(answer, "claude-alias")
    anthropic.types.Message.model_validate_json(body)  # the SDK's own model accepts it
    document: dict[str, Any] = orjson.loads(body)
    return document


def upstream_answer(name: str, *, thoughts: bool = True) -> GenerateResponse:
    request = GenerateRequest("alias", (Message("user", (TextPart("hi"),)),),
                              thinking=ThinkingConfig(include_thoughts=thoughts, budget=2048))
    return decode_response((WIRE / name).read_bytes(), request, "alias")


def test_text_message_exactly() -> None:
    assert orjson.loads(encode_message(response(TextPart("Hello!")), "claude-alias")) == {
        "id": "msg_r-1", "type": "message", "role": "assistant", "model": "claude-alias",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 5},
    }


def test_the_sdk_reads_a_message() -> None:
    body = encode_message(response(TextPart("Hi"), ToolCallPart("get_weather", {"location": "Lima"},
                                                                 "toolu_1")), "claude-alias")
    message = client(json_answer(body)).messages.create(
        model="claude-alias", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert message.id == "msg_r-1" and message.stop_reason == "tool_use"
    text, call = message.content
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Hi"
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert (call.id, call.name, call.input) == ("toolu_1", "get_weather", {"location": "Lima"})


@pytest.mark.parametrize("name", ["message_text.json", "message_tool_use.json",
                                  "message_thinking_tool_use.json",
                                  "message_redacted_thinking.json", "message_refusal.json"])
def test_an_anthropic_upstreams_answer_reaches_the_caller_unchanged(name: str) -> None:
    original = orjson.loads((WIRE / name).read_bytes())
    mine = encoded(upstream_answer(name))
    assert mine["content"] == original["content"]
    assert mine["stop_reason"] == original["stop_reason"]
    assert mine["usage"]["output_tokens"] == original["usage"]["output_tokens"]
    prompt = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    assert sum(mine["usage"][k] for k in prompt) == sum(original["usage"].get(k, 0)
                                                        for k in prompt)
    assert mine["usage"]["cache_read_input_tokens"] == original["usage"].get(
        "cache_read_input_tokens", 0)


def test_hidden_thinking_is_still_handed_over() -> None:
    # Thinking the request did not ask to see rides on the next part's signature; an Anthropic
    # caller must send it back all the same, so it sees the blocks.
    original = orjson.loads((WIRE / "message_redacted_thinking.json").read_bytes())
    hidden = upstream_answer("message_redacted_thinking.json", thoughts=False)
    assert [type(p) for p in hidden.candidates[0].parts] == [TextPart]
    assert encoded(hidden)["content"] == original["content"]


def test_the_caller_sends_thinking_back_and_the_upstream_gets_it_byte_for_byte() -> None:
    upstream = orjson.loads((WIRE / "message_thinking_tool_use.json").read_bytes())
    caller_sees = anthropic.types.Message.model_validate_json(
        encode_message(upstream_answer("message_thinking_tool_use.json"), "claude-alias"))
    call = caller_sees.content[-1]
    assert isinstance(call, anthropic.types.ToolUseBlock)
    body = sent_body(
        model="claude-alias", max_tokens=16000, tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Weather in Paris?"},
                  caller_sees.to_param(),
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                "content": "18 degrees"}]}])
    forwarded = encode_request(decode_messages_request(body), "claude-upstream", stream=True)
    assert forwarded.body["messages"][1] == {"role": "assistant",
                                             "content": upstream["content"]}
    assert forwarded.body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees"}]


def test_other_models_signatures_become_thinking_blocks_and_come_back() -> None:
    own, carried = b"\x01thought", b"\x02call"
    parts = (ReasoningPart("pondering", own), ToolCallPart("get_weather", {}, "toolu_g", carried),
             TextPart("done", carried), TextPart("", carried), ReasoningPart("plain"))
    content = encoded(response(*parts))["content"]
    b64 = base64.b64encode
    assert content == [
        {"type": "thinking", "thinking": "pondering", "signature": OWN + b64(own).decode()},
        {"type": "thinking", "thinking": "", "signature": NEXT + b64(carried).decode()},
        {"type": "tool_use", "id": "toolu_g", "name": "get_weather", "input": {}},
        {"type": "thinking", "thinking": "", "signature": NEXT + b64(carried).decode()},
        {"type": "text", "text": "done"},
        {"type": "thinking", "thinking": "", "signature": NEXT + b64(carried).decode()},
        {"type": "thinking", "thinking": "plain", "signature": ""},
    ]
    back = decode_messages_request({"model": "m", "tools": [WEATHER_TOOL], "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": content}]})
    assert back.messages[1].parts == parts


def test_calls_without_ids_get_stable_distinct_ids() -> None:
    calls = (ToolCallPart("f", {"n": 1}), ToolCallPart("f", {"n": 2}))
    first = [b["id"] for b in encoded(response(*calls))["content"]]
    again = [b["id"] for b in encoded(response(*calls))["content"]]
    other = [b["id"] for b in encoded(response(*calls, response_id="r-2"))["content"]]
    assert first == again
    assert len(set(first + other)) == 4
    assert all(i.startswith("toolu_") and len(i) == len("toolu_") + 24 for i in first)


@pytest.mark.parametrize(("reason", "called", "expected"), [
    (FinishReason.STOP, False, "end_turn"),
    (FinishReason.STOP, True, "tool_use"),
    (None, False, "end_turn"),
    (None, True, "tool_use"),
    (FinishReason.MAX_TOKENS, False, "max_tokens"),
    (FinishReason.MAX_TOKENS, True, "max_tokens"),
    (FinishReason.SAFETY, False, "refusal"),
    (FinishReason.RECITATION, False, "refusal"),
    (FinishReason.MALFORMED_TOOL_CALL, False, "end_turn"),
    (FinishReason.OTHER, False, "end_turn"),
    (FinishReason.OTHER, True, "tool_use"),
])
def test_stop_reasons(reason: FinishReason | None, called: bool, expected: str) -> None:
    parts: tuple[Part, ...] = (TextPart("x"),)
    if called:
        parts += (ToolCallPart("f", {}, "toolu_1"),)
    assert encoded(response(*parts, reason=reason))["stop_reason"] == expected


def test_usage_counts_cache_reads_apart_and_thinking_as_output() -> None:
    usage = Usage(prompt_tokens=1000, output_tokens=50, thoughts_tokens=200, cached_tokens=800)
    assert encoded(response(TextPart("x"), usage=usage))["usage"] == {
        "input_tokens": 200, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 800, "output_tokens": 250}


def test_adjacent_text_is_one_block_and_media_is_left_out() -> None:
    parts = (TextPart("Hel"), BlobPart("image/png", b"\x89PNG"), TextPart("lo"),
             FileRefPart("https://example.com/a.png", "image/png"), TextPart(""))
    assert encoded(response(*parts))["content"] == [{"type": "text", "text": "Hello"}]


def test_no_candidate_is_an_empty_message() -> None:
    empty = GenerateResponse("alias", (), Usage(3, 0), "r-9", 0.0)
    document = encoded(empty)
    assert (document["content"], document["stop_reason"]) == ([], "end_turn")


def test_count_tokens() -> None:
    body = encode_count_tokens(1234)
    assert orjson.loads(body) == {"input_tokens": 1234}
    assert anthropic.types.MessageTokensCount.model_validate_json(body).input_tokens == 1234
