"""Anthropic Messages responses → canonical values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    Candidate,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    GenerateResponse,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from cometgate.dialects.anthropic.envelope import (
    MAGIC,
    pack,
    redacted_block,
    thinking_block,
    unpack,
)
from cometgate.dialects.anthropic.upstream_request import encode_request
from cometgate.dialects.anthropic.upstream_response import decode_response
from cometgate.errors import FailureClass, UpstreamError

WIRE = Path(__file__).parents[3] / "wire" / "anthropic"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
SIGNATURE = ("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds2Ll3dSkU2M9xLZ+0T2bV8D3wLAJ"
             "NcKBSdRTQ1Y=")


def fixture(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def with_thoughts(include: bool | None, **fields: Any) -> GenerateRequest:
    return GenerateRequest(model="alias", messages=REQUEST.messages,
                           thinking=ThinkingConfig(include_thoughts=include, budget=2048),
                           **fields)


def message(*content: dict[str, Any], stop_reason: str = "end_turn") -> bytes:
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                         "model": "claude-x", "content": list(content),
                         "stop_reason": stop_reason, "usage": {"input_tokens": 1,
                                                               "output_tokens": 1}})


def test_text_message_with_cache_usage() -> None:
    response = decode_response(fixture("message_text.json"), REQUEST, "alias")
    assert response.model_version == "alias"
    assert response.candidates == (
        Candidate((TextPart("Hi! My name is Claude."),), FinishReason.STOP, 0),)
    assert response.usage == Usage(prompt_tokens=2095 + 100 + 1800, output_tokens=503,
                                   cached_tokens=1800)


def test_response_id_is_fresh_and_not_the_upstream_one() -> None:
    first = decode_response(fixture("message_text.json"), REQUEST, "alias")
    second = decode_response(fixture("message_text.json"), REQUEST, "alias")
    assert "msg_" not in first.response_id and first.response_id != second.response_id
    assert len(first.response_id) >= 20


def test_parallel_tool_calls_after_text() -> None:
    response = decode_response(fixture("message_tool_use.json"), REQUEST, "alias")
    assert response.candidates[0] == Candidate((
        TextPart("I'll check the weather in both cities."),
        ToolCallPart("get_weather", {"location": "San Francisco, CA", "unit": "celsius"},
                     "toolu_01A09q90qw90lq917835lq9"),
        ToolCallPart("get_weather", {"location": "New York, NY", "unit": "celsius"},
                     "toolu_01B18r01rx01mr028946mr0"),
    ), FinishReason.STOP)


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", FinishReason.STOP), ("stop_sequence", FinishReason.STOP),
    ("tool_use", FinishReason.STOP), ("max_tokens", FinishReason.MAX_TOKENS),
    ("refusal", FinishReason.SAFETY), ("pause_turn", FinishReason.OTHER),
    ("something_new", FinishReason.OTHER),
])
def test_stop_reasons(stop_reason: str, expected: FinishReason) -> None:
    body = message({"type": "text", "text": "x"}, stop_reason=stop_reason)
    assert decode_response(body, REQUEST, "a").candidates[0].finish_reason is expected


def test_refusal_with_no_content() -> None:
    response = decode_response(fixture("message_refusal.json"), REQUEST, "alias")
    assert response.candidates[0] == Candidate((), FinishReason.SAFETY)


@pytest.mark.parametrize("include", [False, None])
def test_hidden_thinking_rides_on_the_next_part(include: bool | None) -> None:
    response = decode_response(fixture("message_thinking_tool_use.json"),
                               with_thoughts(include), "alias")
    (call,) = response.candidates[0].parts
    assert isinstance(call, ToolCallPart)
    assert (call.name, call.arguments, call.call_id) == (
        "get_weather", {"location": "Paris, France"}, "toolu_01CswdEQBMshySk6Y9DFKrfq")
    assert unpack(call.signature) == (thinking_block(
        "The user wants the weather in Paris. I should call get_weather.", SIGNATURE),)


def test_shown_thinking_is_reasoning_that_carries_its_own_block() -> None:
    response = decode_response(fixture("message_redacted_thinking.json"),
                               with_thoughts(True), "alias")
    thought, redacted, text = response.candidates[0].parts
    assert isinstance(thought, ReasoningPart) and isinstance(redacted, ReasoningPart)
    assert thought.text == "Let me analyze this step by step..."
    assert unpack(thought.signature) == (thinking_block(thought.text, (
        "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL")),)
    assert redacted.text == ""
    assert unpack(redacted.signature) is not None
    assert unpack(redacted.signature)[0]["type"] == "redacted_thinking"  # type: ignore[index]
    assert text == TextPart("Based on my analysis, the answer is 42.")


def test_hidden_thinking_and_redacted_thinking_pack_together_in_order() -> None:
    response = decode_response(fixture("message_redacted_thinking.json"), REQUEST, "alias")
    (text,) = response.candidates[0].parts
    assert isinstance(text, TextPart) and text.text.startswith("Based on")
    blocks = unpack(text.signature)
    assert blocks is not None
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"]


def test_thinking_that_nothing_follows_is_kept_on_an_empty_text_part() -> None:
    body = message({"type": "thinking", "thinking": "hmm", "signature": "s"},
                   stop_reason="max_tokens")
    response = decode_response(body, REQUEST, "a")
    assert response.candidates[0] == Candidate(
        (TextPart("", pack([thinking_block("hmm", "s")])),), FinishReason.MAX_TOKENS)


def test_json_output_comes_from_the_respond_call() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              output=OutputFormat("json", {"type": "object"}))
    response = decode_response(fixture("message_respond_tool.json"), request, "a")
    assert response.candidates[0] == Candidate(
        (TextPart('{"name":"Ada Lovelace","born":1815}'),), FinishReason.STOP)


@pytest.mark.parametrize(("output", "tool_input", "text"), [
    (OutputFormat("enum", {"type": "string", "enum": ["yes", "no"]}), {"value": "yes"}, "yes"),
    (OutputFormat("json", {"type": "array"}), {"value": [1, 2]}, "[1,2]"),
    (OutputFormat("json"), {"a": 1}, '{"a":1}'),
])
def test_wrapped_outputs_are_unwrapped(output: OutputFormat, tool_input: dict[str, Any],
                                       text: str) -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages, output=output)
    body = message({"type": "text", "text": "stray"},
                   {"type": "tool_use", "id": "t", "name": "respond", "input": tool_input},
                   stop_reason="tool_use")
    assert decode_response(body, request, "a").candidates[0].parts == (TextPart(text),)


def test_respond_call_missing_its_value_is_malformed() -> None:
    request = GenerateRequest(model="a", messages=REQUEST.messages,
                              output=OutputFormat("enum", {"type": "string", "enum": ["x"]}))
    body = message({"type": "tool_use", "id": "t", "name": "respond", "input": {}},
                   stop_reason="tool_use")
    assert decode_response(body, request, "a").candidates[0] == Candidate(
        (), FinishReason.MALFORMED_TOOL_CALL)


def test_malformed_tool_call_is_left_out() -> None:
    body = message({"type": "tool_use", "id": "t", "name": "f", "input": "not an object"},
                   {"type": "tool_use", "id": "u", "name": "g", "input": {}},
                   stop_reason="tool_use")
    assert decode_response(body, REQUEST, "a").candidates[0] == Candidate(
        (ToolCallPart("g", {}, "u"),), FinishReason.MALFORMED_TOOL_CALL)


def test_unknown_block_types_are_skipped() -> None:
    body = message({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                   {"type": "text", "text": "ok"})
    assert decode_response(body, REQUEST, "a").candidates[0].parts == (TextPart("ok"),)


@pytest.mark.parametrize("body", [
    b"not json", b"[1]", b'{"type":"message"}',
    message({"type": "thinking", "thinking": "no signature"}),
    message({"type": "redacted_thinking"}),
])
def test_unreadable_responses(body: bytes) -> None:
    with pytest.raises(UpstreamError) as raised:
        decode_response(body, REQUEST, "a")
    assert raised.value.failure_class is FailureClass.TRANSIENT  # another candidate may answer
    assert raised.value.http_status == 502


def test_envelope_round_trip_and_rejections() -> None:
    blocks = (thinking_block("t", "s"), redacted_block("d"))
    assert unpack(pack(blocks)) == blocks
    assert unpack(None) is None and unpack(b"gemini") is None
    assert unpack(pack([])) is None
    assert unpack(pack(blocks)[:-3]) is None
    wrong_type = orjson.dumps([{"type": "thinking", "thinking": 1, "signature": "s"}])
    assert unpack(MAGIC + wrong_type) is None


def test_decoded_turn_encodes_back_to_the_golden_continuation() -> None:
    """A full tool loop: the response fixture decoded as a Gemini caller would keep it (thinking
    hidden, call id kept), then the next request encoded, equals the documented shape."""
    tool = FunctionTool("get_weather", "Get the current weather in a given location",
                        {"type": "object", "properties": {"location": {"type": "string"}},
                         "required": ["location"]})
    question = Message("user", (TextPart("What's the weather in Paris?"),))
    first = GenerateRequest(model="a", messages=(question,), tools=(tool,),
                            system=(TextPart("You are a weather assistant."),),
                            thinking=ThinkingConfig(budget=10000),
                            params=GenerationParams(max_output_tokens=16000))
    turn = decode_response(fixture("message_thinking_tool_use.json"), first, "a")
    result = ToolResultPart("get_weather", {"output": {"temperature": 18, "sky": "cloudy"}})
    second = replace(first, messages=(question, Message("assistant", answer_parts(turn)),
                                      Message("user", (result,))))
    encoded = encode_request(second, "claude-sonnet-4-20250514", stream=True)
    assert encoded.body == orjson.loads(fixture("tool_loop_thinking.request.json"))
    assert encoded.dropped == ()


def answer_parts(response: GenerateResponse) -> tuple[Part, ...]:
    return response.candidates[0].parts
