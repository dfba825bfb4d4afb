"""Canonical request → OpenAI Chat Completions body."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    Message,
    OutputFormat,
    PromptCache,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
)
from cometgate.dialects.openai.upstream_request import OpenAIOptions, encode_request
from cometgate.errors import InvalidRequest


def user(*parts: Any) -> Message:
    return Message("user", tuple(parts))


def model(*parts: Any) -> Message:
    return Message("assistant", tuple(parts))


def body(request: GenerateRequest, **options: Any) -> dict[str, Any]:
    return encode_request(request, "up-model", stream=False, options=OpenAIOptions(**options)).body


def test_plain_conversation_with_system_instruction() -> None:
    request = GenerateRequest(
        model="alias",
        system=(TextPart("Be brief."), TextPart("Answer in French.")),
        messages=(user(TextPart("Hi")), model(TextPart("Salut"), TextPart(" !")),
                  user(TextPart("a"), TextPart("b"))),
    )
    assert body(request) == {
        "model": "up-model",
        "messages": [
            {"role": "system", "content": "Be brief.\nAnswer in French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Salut !"},
            {"role": "user", "content": [{"type": "text", "text": "a"},
                                         {"type": "text", "text": "b"}]},
        ],
    }


def test_images_inline_and_by_url() -> None:
    request = GenerateRequest(model="m", messages=(user(
        TextPart("What is this?"),
        BlobPart("image/png", b"\x89PNG"),
        FileRefPart("https://example.com/cat.jpg", "image/jpeg"),
    ),))
    assert body(request)["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("part", [
    BlobPart("audio/wav", b"RIFF"),
    BlobPart("application/pdf", b"%PDF"),
    FileRefPart("gs://bucket/cat.jpg", "image/jpeg"),
    FileRefPart("https://example.com/a", None),
])
def test_unsupported_media_is_refused_naming_the_mime_type(part: Any) -> None:
    request = GenerateRequest(model="m", messages=(user(part),))
    with pytest.raises(InvalidRequest) as caught:
        body(request)
    assert "messages[0].parts[0]" in caught.value.message
    assert f"MIME type {part.mime_type or 'unknown'}" in caught.value.message


def test_system_instruction_must_be_text() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),),
                              system=(BlobPart("image/png", b"x"),))
    with pytest.raises(InvalidRequest, match="system instruction"):
        body(request)


def test_reasoning_and_signatures_are_dropped_and_reported() -> None:
    request = GenerateRequest(model="m", messages=(
        user(TextPart("q")),
        model(ReasoningPart("hmm", b"sig"), TextPart("a", signature=b"s2")),
        model(ReasoningPart("only thinking")),
        user(TextPart("next")),
    ))
    encoded = encode_request(request, "up", stream=False)
    assert encoded.body["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "next"},
    ]
    assert encoded.dropped == (
        "messages[1].parts[0]: reasoning (OpenAI has no input field for it)",
        "messages[1].parts[1].signature: thought signatures are Gemini-only",
        "messages[2].parts[0]: reasoning (OpenAI has no input field for it)",
    )


def test_tool_round_trip_with_ids_missing_pairs_parallel_calls_in_order() -> None:
    # google-genai automatic function calling: calls may lack ids, results always do.
    request = GenerateRequest(model="m", messages=(
        user(TextPart("weather in Paris and Rome?")),
        model(TextPart("Checking."),
              ToolCallPart("weather", {"city": "Paris"}),
              ToolCallPart("time", {}),
              ToolCallPart("weather", {"city": "Rome"})),
        user(ToolResultPart("weather", {"temp": 20}),
             ToolResultPart("weather", {"temp": 25}),
             ToolResultPart("time", {"now": "12:00"}),
             TextPart("and tomorrow?")),
    ))
    messages = body(request)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_1_0", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_1_1", "type": "function", "function": {"name": "time", "arguments": "{}"}},
            {"id": "call_1_2", "type": "function",
             "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_1_0", "content": '{"temp":20}'},
        {"role": "tool", "tool_call_id": "call_1_2", "content": '{"temp":25}'},
        {"role": "tool", "tool_call_id": "call_1_1", "content": '{"now":"12:00"}'},
        {"role": "user", "content": "and tomorrow?"},
    ]


def test_ids_present_are_kept_and_results_match_by_id() -> None:
    request = GenerateRequest(model="m", messages=(
        model(ToolCallPart("f", {"n": 1}, call_id="a"), ToolCallPart("f", {"n": 2}, call_id="b")),
        user(ToolResultPart("f", {"r": 2}, call_id="b"), ToolResultPart("f", {"r": 1})),
    ))
    messages = body(request)["messages"]
    assert [c["id"] for c in messages[0]["tool_calls"]] == ["a", "b"]
    assert messages[0]["content"] is None
    assert [(m["tool_call_id"], m["content"]) for m in messages[1:]] == [
        ("b", '{"r":2}'), ("a", '{"r":1}')]


def test_synthesised_ids_are_stable() -> None:
    request = GenerateRequest(model="m", messages=(
        model(ToolCallPart("f", {})), user(ToolResultPart("f", {}))))
    assert body(request) == body(request)


@pytest.mark.parametrize("messages", [
    (user(ToolResultPart("f", {})),),  # no call at all
    (model(ToolCallPart("f", {})), user(ToolResultPart("g", {}))),  # other name
    (model(ToolCallPart("f", {})), user(ToolResultPart("f", {}), ToolResultPart("f", {}))),
    (model(ToolCallPart("f", {}, call_id="x")), user(ToolResultPart("f", {}, call_id="y"))),
])
def test_unpaired_results_are_refused(messages: tuple[Message, ...]) -> None:
    with pytest.raises(InvalidRequest, match="answers no function call"):
        body(GenerateRequest(model="m", messages=messages))


def test_tool_call_in_a_user_turn_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="only appear in a model turn"):
        body(GenerateRequest(model="m", messages=(user(ToolCallPart("f", {})),)))


TOOLS = (
    FunctionTool("weather", "Current weather", {"type": "object",
                                                "properties": {"city": {"type": "string"}}}),
    FunctionTool("time"),
    FunctionTool("news"),
)


@pytest.mark.parametrize(("choice", "names", "expected"), [
    (ToolChoice(ToolMode.AUTO), ["weather", "time", "news"], "auto"),
    (ToolChoice(ToolMode.VALIDATED), ["weather", "time", "news"], "auto"),
    (ToolChoice(ToolMode.NONE), ["weather", "time", "news"], "none"),
    (ToolChoice(ToolMode.ANY), ["weather", "time", "news"], "required"),
    (ToolChoice(ToolMode.ANY, ("time",)), ["time"],
     {"type": "function", "function": {"name": "time"}}),
    (ToolChoice(ToolMode.ANY, ("news", "weather")), ["weather", "news"], "required"),
])
def test_tools_and_tool_choice(choice: ToolChoice, names: list[str], expected: Any) -> None:
    encoded = body(GenerateRequest(model="m", messages=(user(TextPart("x")),), tools=TOOLS,
                                   tool_choice=choice))
    assert [t["function"]["name"] for t in encoded["tools"]] == names
    assert encoded["tool_choice"] == expected


def test_function_declarations() -> None:
    encoded = body(GenerateRequest(model="m", messages=(user(TextPart("x")),), tools=TOOLS[:2]))
    assert encoded["tools"] == [
        {"type": "function", "function": {
            "name": "weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {
            "name": "time", "parameters": {"type": "object", "properties": {}}}},
    ]


def test_allowed_names_must_be_declared() -> None:
    with pytest.raises(InvalidRequest, match="not declared"):
        body(GenerateRequest(model="m", messages=(user(TextPart("x")),), tools=TOOLS,
                             tool_choice=ToolChoice(ToolMode.ANY, ("nope",))))


def test_no_tools_means_no_tool_choice() -> None:
    encoded = body(GenerateRequest(model="m", messages=(user(TextPart("x")),),
                                   tool_choice=ToolChoice(ToolMode.ANY)))
    assert "tools" not in encoded and "tool_choice" not in encoded


def test_generation_params() -> None:
    params = GenerationParams(temperature=0.2, top_p=0.9, top_k=40, max_output_tokens=256,
                              stop_sequences=("END",), seed=7, presence_penalty=0.1,
                              frequency_penalty=-0.5, candidate_count=2,
                              response_logprobs=True, logprobs=3)
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),), params=params)
    encoded = body(request, accepts_top_k=True)
    del encoded["messages"]
    assert encoded == {"model": "up-model", "temperature": 0.2, "top_p": 0.9, "top_k": 40,
                       "max_tokens": 256, "stop": ["END"], "seed": 7, "presence_penalty": 0.1,
                       "frequency_penalty": -0.5, "n": 2, "logprobs": True, "top_logprobs": 3}


def test_top_k_dropped_and_reported_when_not_accepted() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),),
                              params=GenerationParams(top_k=40, max_output_tokens=9))
    encoded = encode_request(request, "up", stream=False,
                             options=OpenAIOptions(max_tokens_field="max_completion_tokens"))
    assert "top_k" not in encoded.body
    assert encoded.body["max_completion_tokens"] == 9 and "max_tokens" not in encoded.body
    assert encoded.dropped == ("params.top_k: this upstream does not accept top_k",)


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


@pytest.mark.parametrize(("output", "strict", "expected"), [
    (OutputFormat("json", SCHEMA), True,
     {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA,
                                             "strict": True}}),
    (OutputFormat("json", SCHEMA), False,
     {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA,
                                             "strict": False}}),
    (OutputFormat("json"), True, {"type": "json_object"}),
    (OutputFormat("enum", {"type": "string", "enum": ["a", "b"]}), True,
     {"type": "json_schema", "json_schema": {
         "name": "response", "schema": {"type": "string", "enum": ["a", "b"]}, "strict": True}}),
])
def test_response_format(output: OutputFormat, strict: bool, expected: Any) -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),), output=output)
    assert body(request, strict_schemas=strict)["response_format"] == expected


def test_enum_without_schema_is_refused() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),),
                              output=OutputFormat("enum"))
    with pytest.raises(InvalidRequest, match="enum"):
        body(request)


def test_stream_asks_for_usage() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),))
    encoded = encode_request(request, "up", stream=True).body
    assert encoded["stream"] is True
    assert encoded["stream_options"] == {"include_usage": True}
    assert "stream" not in encode_request(request, "up", stream=False).body


@pytest.mark.parametrize(("thinking", "effort"), [
    (ThinkingConfig(level="MINIMAL"), "minimal"),
    (ThinkingConfig(level="low"), "low"),
    (ThinkingConfig(level="MEDIUM"), "medium"),
    (ThinkingConfig(level="HIGH"), "high"),
    (ThinkingConfig(budget=0), "minimal"),
    (ThinkingConfig(budget=1024), "low"),
    (ThinkingConfig(budget=1025), "medium"),
    (ThinkingConfig(budget=8192), "medium"),
    (ThinkingConfig(budget=24576), "high"),
    (ThinkingConfig(budget=-1), None),
    (ThinkingConfig(include_thoughts=True), None),
])
def test_thinking_maps_to_reasoning_effort(thinking: ThinkingConfig, effort: str | None) -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),), thinking=thinking)
    assert body(request, supports_reasoning=True).get("reasoning_effort") == effort


def test_xhigh_is_sent_as_high_and_reported() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),),
                              thinking=ThinkingConfig(level="XHIGH"))
    encoded = encode_request(request, "up", stream=False,
                             options=OpenAIOptions(supports_reasoning=True))
    assert encoded.body["reasoning_effort"] == "high"
    assert encoded.dropped == ("thinking.level: XHIGH was sent as reasoning_effort=high",)


def test_unknown_thinking_level_is_refused() -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),),
                              thinking=ThinkingConfig(level="MAXIMUM"))
    with pytest.raises(InvalidRequest, match="thinking level"):
        body(request, supports_reasoning=True)


@pytest.mark.parametrize("thinking", [ThinkingConfig(level="LOW"), ThinkingConfig(budget=512)])
def test_thinking_refused_when_the_upstream_cannot_reason(thinking: ThinkingConfig) -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),), thinking=thinking)
    with pytest.raises(InvalidRequest, match="thinking is not supported"):
        body(request)


@pytest.mark.parametrize("thinking", [ThinkingConfig(budget=0), ThinkingConfig(budget=-1),
                                      ThinkingConfig(include_thoughts=True)])
def test_thinking_off_or_dynamic_is_harmless_without_reasoning(thinking: ThinkingConfig) -> None:
    request = GenerateRequest(model="m", messages=(user(TextPart("x")),), thinking=thinking)
    assert "reasoning_effort" not in body(request)


def test_openai_extensions_ride_along_but_never_override() -> None:
    request = GenerateRequest(
        model="m", messages=(user(TextPart("x")),),
        params=GenerationParams(temperature=0.5),
        extensions={"openai": {"user": "u-1", "temperature": 1.5, "model": "other"},
                    "gemini": {"safetySettings": []}},
    )
    encoded = body(request)
    assert encoded["user"] == "u-1"
    assert encoded["temperature"] == 0.5 and encoded["model"] == "up-model"
    assert "safetySettings" not in encoded


def test_a_cached_prefix_is_named_for_the_upstreams_prompt_cache() -> None:
    request = GenerateRequest("m", (user(TextPart("cached")), user(TextPart("q"))),
                              system=(TextPart("s"),), prompt_cache=PromptCache("key-1", 1))
    sent = body(request)
    assert sent["prompt_cache_key"] == "key-1"
    assert [m["content"] for m in sent["messages"]] == ["s", "cached", "q"]
    assert "prompt_cache_key" not in body(GenerateRequest("m", (user(TextPart("q")),)))
