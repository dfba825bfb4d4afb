"""Anthropic Messages requests, as the anthropic SDK sends them → canonical requests; and
back out through the outbound codec unchanged."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.unit.dialects.anthropic.anthropic_sdk import sent_body

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    FunctionTool,
    Message,
    OutputFormat,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
    Untranslated,
)
from cometgate.dialects.anthropic.caller_request import (
    decode_messages_request,
    estimate_messages,
    read_messages_document,
    wants_stream,
)
from cometgate.dialects.anthropic.caller_thinking import NEXT, OWN
from cometgate.dialects.anthropic.envelope import pack, redacted_block, thinking_block
from cometgate.dialects.anthropic.tool_results import tool_result_fields
from cometgate.dialects.anthropic.upstream_request import encode_request
from cometgate.dialects.estimate import MEDIA_PART_TOKENS
from cometgate.errors import InvalidRequest

WIRE = Path(__file__).resolve().parents[3] / "wire" / "anthropic"
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds2Ll3dSkU2M9xLZ+0T2bV8D3wLAJ"
PNG = b"\x89PNG\r\n\x1a\n tiny"
PDF = b"%PDF-1.7 tiny"
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather", "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}
TIME_TOOL: dict[str, Any] = {"name": "get_time",
                             "input_schema": {"type": "object", "properties": {}}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tool_loop() -> list[dict[str, Any]]:
    """A parallel tool loop with thinking, one failed call and an image in the results turn."""
    return [
        {"role": "user", "content": "Weather and time in Lima and Quito?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two cities, two calls each.",
             "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
             "input": {"city": "Lima"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_weather",
             "input": {"city": "Quito"}},
            {"type": "tool_use", "id": "toolu_01C", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18°C, cloudy"},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": True,
             "content": [{"type": "text", "text": "station offline"}]},
            {"type": "tool_result", "tool_use_id": "toolu_01C",
             "content": [{"type": "text", "text": "12:00"},
                         {"type": "image", "source": {"type": "base64",
                                                      "media_type": "image/png",
                                                      "data": b64(PNG)}}]},
            {"type": "text", "text": "Also, what is in this picture?",
             "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "url",
                                         "url": "https://example.com/cat.webp?size=2"}},
        ]},
    ]


def request_body(**fields: Any) -> dict[str, Any]:
    create: dict[str, Any] = {"model": "claude-alias", "max_tokens": 4096,
                              "messages": [{"role": "user", "content": "Hello"}]}
    create.update(fields)
    return sent_body(**create)


def decode(**fields: Any) -> Any:
    body = request_body(**fields)
    return decode_messages_request(read_messages_document(orjson.dumps(body)))


def refusal(document: dict[str, Any], *, require_max_tokens: bool = True) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        read = read_messages_document(orjson.dumps(document),
                                      require_max_tokens=require_max_tokens)
        decode_messages_request(read)
    return caught.value


# --- reading the document ----------------------------------------------------------------


def test_minimal_request() -> None:
    request = decode()
    assert request.model == "claude-alias"
    assert request.messages == (Message("user", (TextPart("Hello"),)),)
    assert request.params.max_output_tokens == 4096
    assert (request.system, request.tools, request.thinking, request.output) == ((), (), None,
                                                                                 None)
    assert request.untranslated == () and request.extensions == {}


@pytest.mark.parametrize(("body", "message", "violation"), [
    (b"{not json", "There was an error parsing the body of your request as JSON.", None),
    (b"[1, 2]", "The request body must be a JSON object.", None),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}',
     "model: Field required", "model"),
    (b'{"model": 7, "messages": [], "max_tokens": 5}',
     "model: Input should be a valid string", "model"),
    (b'{"model": "m", "max_tokens": 5}', "messages: Field required", "messages"),
    (b'{"model": "m", "messages": {}, "max_tokens": 5}',
     "messages: Input should be a valid list", "messages"),
    (b'{"model": "m", "messages": [], "max_tokens": 5}',
     "messages: at least one message is required", "messages"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}',
     "max_tokens: Field required", "max_tokens"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
     "max_tokens: Input should be greater than or equal to 1", "max_tokens"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}',
     "max_tokens: Input should be a valid integer", "max_tokens"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": true}',
     "max_tokens: Input should be a valid integer", "max_tokens"),
])
def test_document_refusals(body: bytes, message: str, violation: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_messages_document(body)
    assert caught.value.message == message
    assert list(caught.value.violations) == ([violation] if violation else [])


def test_count_tokens_needs_no_max_tokens_and_integral_floats_are_integers() -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}'
    document = read_messages_document(body, require_max_tokens=False)
    assert decode_messages_request(document).params.max_output_tokens is None
    body = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 9.0}'
    assert decode_messages_request(read_messages_document(body)).params.max_output_tokens == 9


def test_wants_stream() -> None:
    assert wants_stream({}) is False
    assert wants_stream({"stream": None}) is False
    assert wants_stream({"stream": True}) is True
    assert wants_stream({"stream": False}) is False
    with pytest.raises(InvalidRequest) as caught:
        wants_stream({"stream": "yes"})
    assert caught.value.violations == {"stream": "Input should be a valid boolean"}


# --- the conversation ------------------------------------------------------------------------


def test_tool_loop_with_thinking_images_and_parallel_results() -> None:
    request = decode(messages=tool_loop(), tools=[WEATHER_TOOL, TIME_TOOL])
    user, assistant, results = request.messages
    assert user == Message("user", (TextPart("Weather and time in Lima and Quito?"),))
    assert assistant.parts == (
        ReasoningPart("Two cities, two calls each.",
                      pack([thinking_block("Two cities, two calls each.", SIGNATURE)])),
        ReasoningPart("", pack([redacted_block("EmwKAhgBEgy3va3pzix")])),
        TextPart("Checking."),
        ToolCallPart("get_weather", {"city": "Lima"}, "toolu_01A"),
        ToolCallPart("get_weather", {"city": "Quito"}, "toolu_01B"),
        ToolCallPart("get_time", {}, "toolu_01C"),
    )
    image_result: Any = [{"type": "text", "text": "12:00"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": b64(PNG)}}]
    assert results.parts == (
        ToolResultPart("get_weather", {"output": "18°C, cloudy"}, "toolu_01A"),
        ToolResultPart("get_weather", {"error": "station offline"}, "toolu_01B"),
        ToolResultPart("get_time", {"content": image_result}, "toolu_01C"),
        TextPart("Also, what is in this picture?"),
        FileRefPart("https://example.com/cat.webp?size=2", "image/webp"),
    )


def test_round_trip_through_the_outbound_codec_keeps_blocks_ids_and_signatures() -> None:
    messages = tool_loop()
    body = request_body(messages=messages, tools=[WEATHER_TOOL, TIME_TOOL],
                        system=[{"type": "text", "text": "Be brief."}])
    request = decode_messages_request(read_messages_document(orjson.dumps(body)))
    encoded = encode_request(request, "claude-upstream", stream=False)
    assert encoded.dropped == ()
    expected = copy.deepcopy(messages)
    expected[0]["content"] = [{"type": "text", "text": messages[0]["content"]}]
    del expected[2]["content"][3]["cache_control"]  # a cost hint, not content
    expected[2]["content"][1]["content"] = "station offline"  # text blocks: one text
    # A URL keeps its image type only by the extension it was read from.
    assert encoded.body["messages"] == expected
    assert encoded.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert encoded.body["tools"] == [WEATHER_TOOL, TIME_TOOL]


def test_golden_tool_loop_request_round_trips_byte_for_byte() -> None:
    original = (WIRE / "tool_loop_thinking.request.json").read_bytes()
    request = decode_messages_request(read_messages_document(original))
    encoded = encode_request(request, "claude-sonnet-4-20250514", stream=True)
    assert encoded.body == orjson.loads(original)
    assert encoded.dropped == ()


def test_consecutive_turns_of_one_role_are_combined() -> None:
    request = decode(messages=[
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "five"},
    ])
    assert request.messages == (
        Message("user", (TextPart("one"), TextPart("two"))),
        Message("assistant", (TextPart("three"), TextPart("four"))),
        Message("user", (TextPart("five"),)),
    )


def test_an_empty_final_assistant_message_is_left_out_and_a_prefill_kept() -> None:
    empty = decode(messages=[{"role": "user", "content": "hi"},
                             {"role": "assistant", "content": ""}])
    assert [m.role for m in empty.messages] == ["user"]
    prefill = decode(messages=[{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": "The answer is ("}])
    assert prefill.messages[-1] == Message("assistant", (TextPart("The answer is ("),))


def test_system_as_string_or_text_blocks() -> None:
    assert decode(system="Be terse.").system == (TextPart("Be terse."),)
    blocks = [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "B"}]
    assert decode(system=blocks).system == (TextPart("A"), TextPart("B"))
    assert decode(system="").system == ()


def test_media_blocks() -> None:
    request = decode(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": b64(PNG)}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/x"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": b64(PDF)}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain words"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"},
         "title": "Report", "citations": {"enabled": True}},
    ]}])
    assert request.messages[0].parts == (
        BlobPart("image/png", PNG),
        FileRefPart("https://example.com/x", "image/jpeg"),
        BlobPart("application/pdf", PDF),
        BlobPart("text/plain", b"plain words"),
        FileRefPart("https://example.com/a.pdf", "application/pdf"),
    )
    reason = "only Anthropic models read a document's title, context and citation settings"
    assert request.untranslated == (
        Untranslated("messages.0.content.4.citations", reason, droppable=True),
        Untranslated("messages.0.content.4.title", reason, droppable=True),
    )


def test_signatures_of_other_models_come_back_where_they_were() -> None:
    gemini = b"\x12\x34gemini-signature"
    other = b"\x00text-signature"
    request = decode(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": OWN + b64(gemini)},
            {"type": "thinking", "thinking": "", "signature": NEXT + b64(gemini)},
            {"type": "tool_use", "id": "toolu_g", "name": "get_time", "input": {}},
            {"type": "thinking", "thinking": "", "signature": NEXT + b64(other)},
            {"type": "text", "text": "done"},
            {"type": "thinking", "thinking": "", "signature": NEXT + b64(other)},
            {"type": "thinking", "thinking": "unsigned", "signature": ""},
        ]},
    ], tools=[TIME_TOOL])
    assert request.messages[1].parts == (
        ReasoningPart("hm", gemini),
        ToolCallPart("get_time", {}, "toolu_g", gemini),
        TextPart("done", other),
        TextPart("", other),  # nothing followed it that could carry it
        ReasoningPart("unsigned"),
    )


def test_a_signature_for_the_next_block_with_nothing_after_it_stays_at_the_end() -> None:
    request = decode(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "done"},
            {"type": "thinking", "thinking": "", "signature": NEXT + b64(b"sig")}]}])
    assert request.messages[1].parts == (TextPart("done"), TextPart("", b"sig"))


def test_unknown_keys_on_messages_and_blocks_are_untranslated() -> None:
    request = decode(messages=[{"role": "user", "name": "ann", "content": [
        {"type": "text", "text": "hi", "priority": 2, "citations": None}]}])
    reason = "only Anthropic's own API understands this field"
    assert request.untranslated == (Untranslated("messages.0.name", reason),
                                    Untranslated("messages.0.content.0.priority", reason))


@pytest.mark.parametrize(("response", "fields"), [
    # Text answers (an Anthropic caller's text results arrive so) are their text.
    ({"output": "rain"}, {"content": "rain"}),
    ({"error": "no station"}, {"content": "no station", "is_error": True}),
    ({"output": ""}, {"content": ""}),
    # An Anthropic caller's results with other blocks come back as they were sent.
    ({"content": "ok"}, {"content": "ok"}),
    ({"content": [{"type": "image", "source": {}}], "is_error": False},
     {"content": [{"type": "image", "source": {}}], "is_error": False}),
    ({"is_error": True}, {"is_error": True}),
    ({}, {}),
    # Anything else is JSON text; Gemini's lone "error" marks a failed call.
    ({"output": {"mm": 3}}, {"content": '{"output":{"mm":3}}'}),
    ({"error": {"code": 7}}, {"content": '{"error":{"code":7}}', "is_error": True}),
    ({"output": "rain", "source": "met"}, {"content": '{"output":"rain","source":"met"}'}),
    ({"content": None}, {"content": '{"content":null}'}),
    ({"content": 3}, {"content": '{"content":3}'}),
    ({"content": "x", "is_error": "yes"}, {"content": '{"content":"x","is_error":"yes"}'}),
    ({"content": [{"type": "tool_use"}]}, {"content": '{"content":[{"type":"tool_use"}]}'}),
    ({"content": ["text"]}, {"content": '{"content":["text"]}'}),
])
def test_tool_result_convention(response: dict[str, Any], fields: dict[str, Any]) -> None:
    assert tool_result_fields(response) == fields


# --- tools, thinking, output, parameters -------------------------------------------------


def test_tools_and_tool_choices() -> None:
    request = decode(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice={"type": "any"})
    assert request.tools == (
        FunctionTool("get_weather", "Current weather for a city", WEATHER_TOOL["input_schema"]),
        FunctionTool("get_time", "", TIME_TOOL["input_schema"]),
    )
    assert request.tool_choice == ToolChoice(ToolMode.ANY)
    assert decode(tools=[TIME_TOOL]).tool_choice == ToolChoice()
    assert decode(tools=[TIME_TOOL], tool_choice={"type": "none"}).tool_choice == ToolChoice(
        ToolMode.NONE)
    named = decode(tools=[WEATHER_TOOL, TIME_TOOL],
                   tool_choice={"type": "tool", "name": "get_time"})
    assert named.tool_choice == ToolChoice(ToolMode.ANY, ("get_time",))
    assert named.untranslated == ()


def test_single_call_requests_and_tool_options_are_reported_droppable() -> None:
    request = decode(tools=[{**TIME_TOOL, "strict": True, "cache_control": {"type": "ephemeral"}}],
                     tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("tools.0.strict", True), ("tools.0.cache_control", True),
        ("tool_choice.disable_parallel_tool_use", True)]
    assert decode(tools=[TIME_TOOL], tool_choice={
        "type": "auto", "disable_parallel_tool_use": False}).untranslated == ()


def test_anthropic_server_tools_cannot_be_dropped() -> None:
    request = decode(tools=[{"type": "web_search_20250305", "name": "web_search",
                             "max_uses": 3}, TIME_TOOL])
    assert request.tools == (FunctionTool("get_time", "", TIME_TOOL["input_schema"]),)
    (entry,) = request.untranslated
    assert (entry.path, entry.droppable) == ("tools.0", False)
    assert "web_search_20250305" in entry.reason


@pytest.mark.parametrize(("thinking", "effort", "expected"), [
    ({"type": "enabled", "budget_tokens": 2048}, None,
     ThinkingConfig(include_thoughts=True, budget=2048)),
    ({"type": "disabled"}, None, ThinkingConfig(budget=0)),
    ({"type": "adaptive"}, None, ThinkingConfig(include_thoughts=True, budget=-1)),
    ({"type": "adaptive"}, "low", ThinkingConfig(include_thoughts=True, level="LOW")),
    ({"type": "adaptive"}, "xhigh", ThinkingConfig(include_thoughts=True, level="XHIGH")),
    ({"type": "adaptive"}, "max", ThinkingConfig(include_thoughts=True, level="XHIGH")),
])
def test_thinking(thinking: dict[str, Any], effort: str | None,
                  expected: ThinkingConfig) -> None:
    fields: dict[str, Any] = {"thinking": thinking}
    if effort is not None:
        fields["output_config"] = {"effort": effort}
    request = decode(**fields)
    assert request.thinking == expected
    assert request.untranslated == ()


def test_what_thinking_settings_cannot_carry_is_reported() -> None:
    omitted = decode(thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
                     output_config={"effort": "high"})
    assert [(u.path, u.droppable) for u in omitted.untranslated] == [
        ("thinking.display", True), ("output_config.effort", True)]
    alone = decode(output_config={"effort": "medium"})
    assert alone.thinking is None
    assert [u.path for u in alone.untranslated] == ["output_config.effort"]


def test_structured_output() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}}
    config = {"format": {"type": "json_schema", "schema": schema}}
    assert decode(output_config=config).output == OutputFormat("json", schema)
    document = request_body()
    document["output_format"] = {"type": "json_schema", "schema": schema}  # the beta field
    assert decode_messages_request(document).output == OutputFormat("json", schema)
    document["output_config"] = config
    assert refusal(document).violations == {
        "output_format": "cannot be combined with output_config.format"}


def test_sampling_parameters() -> None:
    # This SDK version has no arguments for them any more; older clients still send them.
    params = decode(extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 40},
                    stop_sequences=["END", "\n\n"]).params
    assert (params.temperature, params.top_p, params.top_k) == (0.2, 0.9, 40)
    assert params.stop_sequences == ("END", "\n\n")
    assert params.candidate_count == 1


def test_unknown_fields_are_untranslated_and_ride_along_for_anthropic() -> None:
    document = request_body(metadata={"user_id": "u-1"}, service_tier="auto")
    document.update({"container": "cntr_1", "speed": "fast", "cache_control": {"type": "x"}})
    request = decode_messages_request(document)
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("metadata", True), ("service_tier", True), ("container", False), ("speed", True),
        ("cache_control", True)]
    assert request.extensions == {"anthropic": {
        "metadata": {"user_id": "u-1"}, "service_tier": "auto", "container": "cntr_1",
        "speed": "fast", "cache_control": {"type": "x"}}}
    # An Anthropic upstream is sent them as they came.
    body = encode_request(request, "claude-upstream", stream=False).body
    assert (body["container"], body["speed"], body["metadata"]) == (
        "cntr_1", "fast", {"user_id": "u-1"})


def test_service_only_fields_and_the_beta_header_are_droppable() -> None:
    cached = {"type": "ephemeral"}
    document = request_body(
        system=[{"type": "text", "text": "Be brief.", "cache_control": cached}],
        tools=[{**TIME_TOOL, "cache_control": cached}],
        messages=[
            {"role": "user", "content": "Time?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "cache_control": cached,
                 "content": [{"type": "text", "text": "12:00", "cache_control": cached}]}]},
        ])
    # Claude Code sends it; the SDK's typed create() does not know it yet.
    document["context_management"] = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    request = decode_messages_request(
        document, beta="context-management-2025-06-27,interleaved-thinking-2025-05-14")
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("anthropic-beta", True), ("context_management", True), ("tools.0.cache_control", True),
        ("messages.2.content.0.cache_control", True),
        ("messages.2.content.0.content.0.cache_control", True),
        ("system.0.cache_control", True)]
    assert decode_messages_request(request_body(), beta="").untranslated == ()


# --- refusals ----------------------------------------------------------------------------

BASE: dict[str, Any] = {"model": "m", "max_tokens": 100,
                        "messages": [{"role": "user", "content": "hi"}]}


def with_content(*blocks: Any, role: str = "user") -> dict[str, Any]:
    return {**BASE, "messages": [{"role": role, "content": list(blocks)}]}


def after_call(*blocks: Any) -> dict[str, Any]:
    return {**BASE, "tools": [TIME_TOOL], "messages": [
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                           "name": "get_time", "input": {}}]},
        {"role": "user", "content": list(blocks)},
    ]}


@pytest.mark.parametrize(("document", "path", "text"), [
    ({**BASE, "messages": [{"content": "x"}]}, "messages.0.role", "Field required"),
    ({**BASE, "messages": [{"role": "system", "content": "x"}]}, "messages",
     'Unexpected role "system". The Messages API accepts a top-level `system` parameter, not '
     '"system" as an input message role.'),
    ({**BASE, "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role",
     "Input should be 'user' or 'assistant'"),
    ({**BASE, "messages": [{"role": "user", "content": ""}, {"role": "assistant",
                                                             "content": "a"}]},
     "messages.0", "all messages must have non-empty content except for the optional final "
                   "assistant message"),
    ({**BASE, "messages": [{"role": "user", "content": []}]}, "messages.0",
     "all messages must have non-empty content except for the optional final assistant "
     "message"),
    (with_content({"type": "text", "text": ""}), "messages.0.content.0.text",
     "text content blocks must be non-empty"),
    (with_content({"type": "tool_use", "id": "t", "name": "f", "input": {}}),
     "messages.0.content.0.type", "Input tag 'tool_use' found using 'type' does not match any "
     "of the expected tags: 'text', 'image', 'document', 'tool_result'"),
    (with_content({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                  role="assistant"),
     "messages.0.content.0.type", "`server_tool_use` blocks cannot be passed on to this model"),
    (with_content({"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                               "data": "AAAA"}}),
     "messages.0.content.0.source.media_type",
     "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
    (with_content({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                               "data": "not base64!"}}),
     "messages.0.content.0.source.data", "Invalid base64 data"),
    (with_content({"type": "image", "source": {"type": "file", "file_id": "file_1"}}),
     "messages.0.content.0.source.type", "Input tag 'file' found using 'type' does not match "
     "any of the expected tags: 'base64', 'url'"),
    (with_content({"type": "document", "source": {"type": "base64", "media_type": "text/html",
                                                  "data": "AAAA"}}),
     "messages.0.content.0.source.media_type", "Input should be 'application/pdf'"),
    (with_content({"type": "document", "source": {"type": "text", "media_type": "text/html",
                                                  "data": "<p>"}}),
     "messages.0.content.0.source.media_type", "Input should be 'text/plain'"),
    (with_content({"type": "thinking", "thinking": "x"}, role="assistant"),
     "messages.0.content.0.signature", "Field required"),
    (with_content({"type": "thinking", "thinking": "x", "signature": OWN + "%%"},
                  role="assistant"),
     "messages.0.content.0.signature", "Invalid `signature` in `thinking` block"),
    (with_content({"type": "tool_use", "id": "t", "name": "f", "input": []}, role="assistant"),
     "messages.0.content.0.input", "Input should be a valid dictionary"),
    (with_content({"type": "tool_use", "id": "", "name": "f", "input": {}}, role="assistant"),
     "messages.0.content.0.id", "String should have at least 1 character"),
    (after_call({"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}),
     "messages.2.content.0", "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. "
     "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
     "message."),
    (after_call({"type": "tool_result", "tool_use_id": "toolu_1", "is_error": "yes"}),
     "messages.2.content.0.is_error", "Input should be a valid boolean"),
    (after_call({"type": "tool_result", "tool_use_id": "toolu_1",
                 "content": [{"type": "tool_use"}]}),
     "messages.2.content.0.content.0.type", "Input tag 'tool_use' found using 'type' does not "
     "match any of the expected tags: 'document', 'image', 'search_result', 'text'"),
    (with_content({"text": "untyped"}), "messages.0.content.0",
     "Unable to extract tag using discriminator 'type'"),
    ({**BASE, "system": [{"type": "image"}]}, "system.0.type",
     "Input tag 'image' found using 'type' does not match any of the expected tags: 'text'"),
    ({**BASE, "tools": [{"name": "bad name", "input_schema": {"type": "object"}}]},
     "tools.0.name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"),
    ({**BASE, "tools": [{"name": "f"}]}, "tools.0.input_schema", "Field required"),
    ({**BASE, "tools": [{"name": "f", "input_schema": {"type": "array"}}]},
     "tools.0.input_schema.type", "Input should be 'object'"),
    ({**BASE, "tools": [TIME_TOOL, TIME_TOOL]}, "tools", "Tool names must be unique."),
    ({**BASE, "tools": [TIME_TOOL], "tool_choice": {"type": "tool", "name": "nope"}},
     "tool_choice.name", "Tool 'nope' not found in provided tools"),
    ({**BASE, "tool_choice": {"type": "sometimes"}}, "tool_choice.type",
     "Input tag 'sometimes' found using 'type' does not match any of the expected tags: "
     "'auto', 'any', 'tool', 'none'"),
    ({**BASE, "thinking": {"type": "enabled", "budget_tokens": 1000}},
     "thinking.budget_tokens", "Input should be greater than or equal to 1024"),
    ({**BASE, "thinking": {"type": "enabled", "budget_tokens": 2000}}, "max_tokens",
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({**BASE, "thinking": {"type": "adaptive", "display": "loud"}}, "thinking.display",
     "Input should be 'summarized' or 'omitted'"),
    ({**BASE, "output_config": {"effort": "extreme"}}, "output_config.effort",
     "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"),
    ({**BASE, "output_config": {"format": {"type": "json_schema"}}},
     "output_config.format.schema", "Field required"),
    ({**BASE, "temperature": 1.5}, "temperature", "Input should be less than or equal to 1"),
    ({**BASE, "temperature": -0.1}, "temperature", "Input should be greater than or equal to 0"),
    ({**BASE, "top_p": "high"}, "top_p", "Input should be a valid number"),
    ({**BASE, "top_k": -1}, "top_k", "Input should be greater than or equal to 0"),
    ({**BASE, "stop_sequences": ["ok", 3]}, "stop_sequences.1",
     "Input should be a valid string"),
])
def test_refusals(document: dict[str, Any], path: str, text: str) -> None:
    error = refusal(document)
    assert error.violations == {path: text}
    assert error.message == f"{path}: {text}"
    assert error.http_status == 400


# --- estimate ------------------------------------------------------------------------------


def test_estimate_counts_text_and_media_and_reports_max_tokens() -> None:
    text_only = {**BASE, "messages": [{"role": "user", "content": "x" * 300}]}
    tokens, limit = estimate_messages(text_only)
    assert limit == 100
    assert tokens >= 100  # 300 characters never count as fewer than 100 tokens
    with_image = with_content({"type": "text", "text": "x" * 300},
                              {"type": "image", "source": {"type": "base64",
                                                           "media_type": "image/png",
                                                           "data": "A" * 90_000}})
    # The image counts as one media part, whatever the size of its data.
    assert tokens + MEDIA_PART_TOKENS <= estimate_messages(with_image)[0] < tokens + 300
    assert estimate_messages({"messages": [], "max_tokens": "9"}) == (1, None)
