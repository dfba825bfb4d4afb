"""Canonical requests → Anthropic Messages bodies."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.canonical import (
    JSON,
    BlobPart,
    FileRefPart,
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    PromptCache,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
)
from cometgate.dialects.anthropic.envelope import MAGIC, pack, redacted_block, thinking_block
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions, encode_request
from cometgate.errors import InvalidRequest

HI = Message("user", (TextPart("hi"),))
WEATHER = FunctionTool("get_weather", "Current weather",
                       {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = FunctionTool("get_time")


def encode(stream: bool = False, options: AnthropicOptions | None = None,
           **fields: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    fields.setdefault("messages", (HI,))
    encoded = encode_request(GenerateRequest(model="alias", **fields), "claude-x",
                             stream=stream, options=options)
    return encoded.body, encoded.dropped


def user(*parts: Part) -> Message:
    return Message("user", parts)


def model(*parts: Part) -> Message:
    return Message("assistant", parts)


def test_minimal_request() -> None:
    body, dropped = encode()
    assert body == {"model": "claude-x", "max_tokens": 4096,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert dropped == ()


def test_stream_flag_and_configured_default_max_tokens() -> None:
    body, _ = encode(stream=True, options=AnthropicOptions(default_max_tokens=1000))
    assert body["stream"] is True and body["max_tokens"] == 1000


def test_system_instruction_as_text_blocks() -> None:
    body, _ = encode(system=(TextPart("Be brief."), TextPart(""), TextPart("Be kind.")))
    assert body["system"] == [{"type": "text", "text": "Be brief."},
                              {"type": "text", "text": "Be kind."}]


def test_system_instruction_refuses_non_text() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(system=(BlobPart("image/png", b"x"),))
    assert "system[0]" in raised.value.violations


def test_consecutive_same_role_messages_are_merged() -> None:
    body, _ = encode(messages=(user(TextPart("a")), user(TextPart("b")),
                               model(TextPart("c")), model(TextPart("d")), user(TextPart("e"))))
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "a"},
                                              {"type": "text", "text": "b"}]
    assert [b["text"] for b in body["messages"][1]["content"]] == ["c", "d"]


def test_empty_messages_are_skipped_and_neighbours_merged() -> None:
    body, _ = encode(messages=(user(TextPart("a")), model(TextPart("")), user(TextPart("b"))))
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


@pytest.mark.parametrize(("part", "block"), [
    (BlobPart("image/png", b"\x89PNG"),
     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                  "data": "iVBORw=="}}),
    (BlobPart("application/pdf", b"%PDF"),
     {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                     "data": "JVBERg=="}}),
    (BlobPart("text/plain", "naïve".encode()),
     {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                     "data": "naïve"}}),
    (FileRefPart("https://example.com/cat.jpg", "image/jpeg"),
     {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}),
    (FileRefPart("https://example.com/a.pdf", "application/pdf"),
     {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}),
])
def test_media_blocks(part: Part, block: dict[str, Any]) -> None:
    body, _ = encode(messages=(user(TextPart("look"), part),))
    assert body["messages"][0]["content"][1] == block


@pytest.mark.parametrize("part", [
    BlobPart("image/tiff", b"x"), BlobPart("audio/wav", b"x"),
    FileRefPart("gs://bucket/cat.jpg", "image/jpeg"),
    FileRefPart("https://generativelanguage.googleapis.com/v1beta/files/abc", "video/mp4"),
])
def test_unsupported_media_is_refused(part: Part) -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(messages=(user(part),))
    assert "messages[0].parts[0]" in raised.value.violations


def test_media_in_a_model_turn_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        encode(messages=(HI, model(BlobPart("image/png", b"x"))))


def test_tools_and_tool_choice() -> None:
    body, _ = encode(tools=(WEATHER, TIME))
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(("choice", "names", "expected"), [
    (ToolChoice(ToolMode.NONE), ["get_weather", "get_time"], {"type": "none"}),
    (ToolChoice(ToolMode.ANY), ["get_weather", "get_time"], {"type": "any"}),
    (ToolChoice(ToolMode.ANY, ("get_time",)), ["get_time"],
     {"type": "tool", "name": "get_time"}),
    (ToolChoice(ToolMode.AUTO, ("get_time",)), ["get_time"], {"type": "auto"}),
    (ToolChoice(ToolMode.VALIDATED), ["get_weather", "get_time"], {"type": "auto"}),
])
def test_tool_choice_modes(choice: ToolChoice, names: list[str],
                           expected: dict[str, Any]) -> None:
    body, _ = encode(tools=(WEATHER, TIME), tool_choice=choice)
    assert [t["name"] for t in body["tools"]] == names
    assert body["tool_choice"] == expected


def test_tool_choice_naming_an_undeclared_function_is_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(tools=(WEATHER,), tool_choice=ToolChoice(ToolMode.ANY, ("nope",)))
    assert "tool_choice.allowed_names" in raised.value.violations


def test_tool_loop_pairs_results_without_ids_and_puts_them_first() -> None:
    body, _ = encode(messages=(
        HI,
        model(ToolCallPart("get_weather", {"city": "Paris"}),
              ToolCallPart("get_weather", {"city": "Rome"})),
        user(TextPart("here you go"),
             ToolResultPart("get_weather", {"output": "rain"}),
             ToolResultPart("get_weather", {"error": "no station"})),
    ))
    calls = body["messages"][1]["content"]
    assert [c["id"] for c in calls] == ["toolu_1_0", "toolu_1_1"]
    assert calls[0] == {"type": "tool_use", "id": "toolu_1_0", "name": "get_weather",
                        "input": {"city": "Paris"}}
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1_0", "content": "rain"},
        {"type": "tool_result", "tool_use_id": "toolu_1_1", "content": "no station",
         "is_error": True},
        {"type": "text", "text": "here you go"},
    ]


def test_results_pair_by_id_when_ids_are_given() -> None:
    body, _ = encode(messages=(
        HI,
        model(ToolCallPart("f", {}, "toolu_A"), ToolCallPart("f", {}, "toolu_B")),
        user(ToolResultPart("f", {"output": 2}, "toolu_B"),
             ToolResultPart("f", {"output": 1}, "toolu_A")),
    ))
    assert [b["tool_use_id"] for b in body["messages"][2]["content"]] == ["toolu_B", "toolu_A"]


def test_a_result_answering_no_call_is_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(messages=(HI, model(ToolCallPart("f", {})),
                         user(ToolResultPart("g", {"output": 1}))))
    assert "messages[2].parts[0]" in raised.value.violations


def test_a_call_in_a_user_turn_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        encode(messages=(user(ToolCallPart("f", {})),))


def test_sampling_parameters() -> None:
    params = GenerationParams(temperature=0.3, top_p=0.9, top_k=40, max_output_tokens=256,
                              stop_sequences=("END",))
    body, dropped = encode(params=params)
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 40)
    assert body["max_tokens"] == 256 and body["stop_sequences"] == ["END"]
    assert dropped == ()


def test_gemini_temperature_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(params=GenerationParams(temperature=1.5))
    assert "params.temperature" in raised.value.violations


def test_tuning_parameters_without_anthropic_form_are_dropped_and_reported() -> None:
    body, dropped = encode(params=GenerationParams(seed=7, presence_penalty=0.5,
                                                   frequency_penalty=0.1))
    assert not {"seed", "presence_penalty", "frequency_penalty"} & body.keys()
    assert [d.split(":")[0] for d in dropped] == [
        "params.seed", "params.presence_penalty", "params.frequency_penalty"]


@pytest.mark.parametrize(("params", "field"), [
    (GenerationParams(candidate_count=2), "params.candidate_count"),
    (GenerationParams(response_logprobs=True), "params.response_logprobs"),
    (GenerationParams(logprobs=3), "params.logprobs"),
])
def test_unsupported_generation_settings_are_refused(params: GenerationParams,
                                                     field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(params=params)
    assert field in raised.value.violations


@pytest.mark.parametrize(("thinking", "budget"), [
    (ThinkingConfig(budget=2000), 2000),
    (ThinkingConfig(budget=-1), 8192),
    (ThinkingConfig(level="minimal"), 1024),
    (ThinkingConfig(level="LOW"), 2048),
    (ThinkingConfig(level="MEDIUM"), 8192),
    (ThinkingConfig(level="HIGH"), 24576),
    (ThinkingConfig(level="XHIGH"), 32768),
    (ThinkingConfig(include_thoughts=True), 8192),
])
def test_thinking_budgets(thinking: ThinkingConfig, budget: int) -> None:
    body, _ = encode(thinking=thinking)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] > budget


@pytest.mark.parametrize("thinking", [ThinkingConfig(budget=0), ThinkingConfig(),
                                      ThinkingConfig(include_thoughts=False)])
def test_no_thinking(thinking: ThinkingConfig) -> None:
    body, _ = encode(thinking=thinking)
    assert "thinking" not in body


def test_unknown_thinking_level_is_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(thinking=ThinkingConfig(level="EXTREME"))
    assert "thinking.level" in raised.value.violations


def test_small_budget_is_raised_to_the_minimum() -> None:
    body, dropped = encode(thinking=ThinkingConfig(budget=100))
    assert body["thinking"]["budget_tokens"] == 1024
    assert dropped == ("thinking.budget: raised from 100 to Anthropic's minimum of 1024",)


def test_max_tokens_is_raised_above_the_budget() -> None:
    body, dropped = encode(thinking=ThinkingConfig(budget=8192))
    assert body["max_tokens"] == 8192 + 4096 and dropped == ()
    body, dropped = encode(thinking=ThinkingConfig(budget=2048),
                           params=GenerationParams(max_output_tokens=500))
    assert body["max_tokens"] == 2548
    assert dropped[0].startswith("params.max_output_tokens: raised from 500 to 2548")
    body, dropped = encode(thinking=ThinkingConfig(budget=2048),
                           params=GenerationParams(max_output_tokens=9000))
    assert body["max_tokens"] == 9000 and dropped == ()


def test_sampling_anthropic_refuses_while_thinking_is_dropped() -> None:
    params = GenerationParams(temperature=0.2, top_k=5, top_p=0.5)
    body, dropped = encode(thinking=ThinkingConfig(budget=2048), params=params)
    assert not {"temperature", "top_k", "top_p"} & body.keys()
    assert sorted(d.split(":")[0] for d in dropped) == [
        "params.temperature", "params.top_k", "params.top_p"]
    body, dropped = encode(thinking=ThinkingConfig(budget=2048),
                           params=GenerationParams(top_p=0.97, temperature=1.0))
    assert body["top_p"] == 0.97 and "temperature" not in body and dropped == ()


def test_thinking_is_dropped_when_a_call_is_forced() -> None:
    body, dropped = encode(tools=(WEATHER,), tool_choice=ToolChoice(ToolMode.ANY),
                           thinking=ThinkingConfig(budget=4096))
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}
    assert dropped[0].startswith("thinking: ")


def test_json_output_with_an_object_schema_is_a_forced_tool() -> None:
    schema: dict[str, JSON] = {"type": "object", "properties": {"name": {"type": "string"}}}
    body, _ = encode(output=OutputFormat("json", schema))
    assert body["tools"] == [{"name": "respond", "description": body["tools"][0]["description"],
                              "input_schema": schema}]
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}


def test_json_output_with_a_non_object_schema_is_wrapped_with_its_definitions() -> None:
    schema: dict[str, JSON] = {"type": "array", "items": {"$ref": "#/$defs/Item"},
              "$defs": {"Item": {"type": "string"}}}
    body, _ = encode(output=OutputFormat("json", schema))
    assert body["tools"][0]["input_schema"] == {
        "type": "object", "properties": {"value": {"type": "array",
                                                   "items": {"$ref": "#/$defs/Item"}}},
        "required": ["value"], "$defs": {"Item": {"type": "string"}}}


def test_json_output_without_schema_and_enum_output() -> None:
    body, _ = encode(output=OutputFormat("json"))
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    enum: dict[str, JSON] = {"type": "string", "enum": ["positive", "negative"]}
    body, _ = encode(output=OutputFormat("enum", enum))
    assert body["tools"][0]["input_schema"] == {
        "type": "object", "properties": {"value": enum}, "required": ["value"]}


def test_enum_output_needs_a_schema() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(output=OutputFormat("enum"))
    assert "output.schema" in raised.value.violations


def test_json_output_and_tools_together_are_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        encode(output=OutputFormat("json"), tools=(WEATHER,))
    assert "output" in raised.value.violations


def test_thinking_envelope_is_unpacked_before_the_carrying_part() -> None:
    thought = thinking_block("Let me call the tool.", "sig-abc")
    hidden = pack([thought, redacted_block("opaque")])
    body, dropped = encode(
        thinking=ThinkingConfig(budget=2048),
        messages=(HI, model(ToolCallPart("get_weather", {"city": "Paris"}, "toolu_1",
                                         signature=hidden)),
                  user(ToolResultPart("get_weather", {"output": "sun"}, "toolu_1"))))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me call the tool.", "signature": "sig-abc"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert dropped == ()


def test_shown_reasoning_round_trips_from_its_own_signature() -> None:
    thought = thinking_block("full thinking", "sig-1")
    body, dropped = encode(messages=(
        HI, model(ReasoningPart("full "), ReasoningPart("thinking"),
                  ReasoningPart("", pack([thought])), TextPart("Answer"))))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "full thinking", "signature": "sig-1"},
        {"type": "text", "text": "Answer"}]
    assert dropped == ()  # the unsigned increments are copies of the envelope's text


def test_foreign_signatures_and_unsigned_reasoning_are_reported() -> None:
    body, dropped = encode(messages=(
        HI, model(ReasoningPart("gemini thought", b"gemini-sig"),
                  TextPart("Answer", signature=b"gemini-sig")),
        user(TextPart("more", signature=b"x"))))
    assert body["messages"][1]["content"] == [{"type": "text", "text": "Answer"}]
    assert dropped == (
        "messages[1].parts[0]: reasoning without an Anthropic signature cannot be sent back",
        "messages[1].parts[1].signature: not a thought signature from an Anthropic model",
        "messages[2].parts[0].signature: only model turns carry thoughts",
    )


def test_a_tampered_envelope_is_not_trusted() -> None:
    forged = pack([thinking_block("t", "s")]).replace(b'"thinking","thinking"',
                                                      b'"tool_use","thinking"')
    _, dropped = encode(messages=(HI, model(TextPart("x", signature=forged))))
    assert dropped == (
        "messages[1].parts[0].signature: not a thought signature from an Anthropic model",)


def test_anthropic_extensions_ride_along_but_canonical_fields_win() -> None:
    body, _ = encode(extensions={"anthropic": {"metadata": {"user_id": "u1"}, "model": "x"},
                                 "openai": {"user": "ignored"}})
    assert body["metadata"] == {"user_id": "u1"} and body["model"] == "claude-x"
    assert "user" not in body


def test_thinking_copied_onto_a_call_comes_back_first_and_once() -> None:
    thought, hidden = thinking_block("Check.", "sig-1"), redacted_block("opaque")
    call = ToolCallPart("get_weather", {"city": "Lima"}, "toolu_1", pack([thought, hidden]))
    expected = [thought, hidden, {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Lima"}}]
    # The caller left the thought parts out and kept the text before the call.
    body, dropped = encode(messages=(HI, model(TextPart("Looking."), call)))
    assert (body["messages"][1]["content"], dropped) == (expected, ())
    # The caller sent every part back: the copy on the call adds nothing.
    body, dropped = encode(messages=(HI, model(
        ReasoningPart("Check.", pack([thought])), ReasoningPart("", pack([hidden])),
        TextPart("Looking."), call)))
    assert (body["messages"][1]["content"], dropped) == (expected, ())


def test_a_malformed_envelope_on_a_call_is_reported_not_trusted() -> None:
    for signature in (MAGIC + b"{not json", MAGIC + b"[]", MAGIC + b'[{"type":"text"}]'):
        call = ToolCallPart("get_weather", {"city": "Lima"}, "toolu_1", signature)
        body, dropped = encode(messages=(HI, model(call)))
        assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]
        assert dropped == (
            "messages[1].parts[0].signature: not a thought signature from an Anthropic model",)


# --- a cached prefix (a Gemini caller's cachedContent) --------------------------------------------

EPHEMERAL = {"type": "ephemeral"}


def test_a_cached_prefix_gets_breakpoints_on_its_system_and_its_last_message() -> None:
    handbook = Message("user", (TextPart("the handbook"),))
    answer = Message("assistant", (TextPart("noted"),))
    question = Message("user", (TextPart("when?"),))
    body, _ = encode(system=(TextPart("one"), TextPart("two")),
                     messages=(handbook, answer, question),
                     prompt_cache=PromptCache("k", messages=2))
    assert body["system"] == [{"type": "text", "text": "one"},
                              {"type": "text", "text": "two", "cache_control": EPHEMERAL}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "the handbook"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "noted",
                                           "cache_control": EPHEMERAL}]},
        {"role": "user", "content": [{"type": "text", "text": "when?"}]}]


def test_a_cached_turn_merged_with_the_callers_keeps_its_breakpoint_mid_message() -> None:
    body, _ = encode(messages=(Message("user", (TextPart("cached"),)), HI),
                     prompt_cache=PromptCache("k", messages=1))
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "cached", "cache_control": EPHEMERAL},
        {"type": "text", "text": "hi"}]}]


def test_without_a_cached_prefix_there_are_no_breakpoints() -> None:
    body, _ = encode(system=(TextPart("one"),), messages=(HI,))
    assert "cache_control" not in str(body)
