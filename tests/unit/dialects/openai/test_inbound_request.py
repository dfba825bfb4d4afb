"""OpenAI chat.completions request bodies (as the openai SDK sends them) → canonical requests,
and back out through the outbound codec."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
import pytest
from pydantic import BaseModel

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    FunctionTool,
    GenerationParams,
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
from cometgate.dialects.openai.caller_request import (
    decode_chat_request,
    estimate_chat,
    read_chat_document,
    wants_stream,
    wants_usage_in_stream,
)
from cometgate.dialects.openai.upstream_request import OpenAIOptions, encode_request
from cometgate.errors import InvalidRequest

from .sdk_client import sent_body

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [
        {"type": "text", "text": "Weather in Paris and Oslo? Here is a map."},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_a", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
    ]},
    {"role": "tool", "tool_call_id": "call_a", "content": '{"temp":20}'},
    {"role": "tool", "tool_call_id": "call_b", "content": "sunny, 12C"},
    {"role": "assistant", "content": "Paris 20, Oslo sunny."},
    {"role": "user", "content": "Thanks"},
]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}


def sdk_request(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"model": "fast", "messages": CONVERSATION, **overrides}
    return sent_body(lambda client: client.chat.completions.create(**arguments))


def decode(document: dict[str, Any]) -> Any:
    return decode_chat_request(read_chat_document(orjson.dumps(document)))


def refusal(document: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode(document)
    return caught.value


def first_param(error: InvalidRequest) -> str:
    return next(iter(error.violations))


def minimal(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


# --- a realistic request, whole --------------------------------------------------------------


def test_sdk_request_with_tools_images_and_parallel_results() -> None:
    document = sdk_request(
        tools=[WEATHER], tool_choice="auto", reasoning_effort="medium",
        response_format={"type": "json_schema",
                         "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}},
        max_completion_tokens=256, stop=["END"], seed=7, temperature=0.2, top_p=0.9,
        presence_penalty=0.5, frequency_penalty=-0.5, logprobs=True, top_logprobs=3,
        user="u-1", metadata={"team": "a"}, store=False, parallel_tool_calls=True,
    )
    request = decode(document)
    assert request.model == "fast"
    assert request.system == (TextPart("You are terse."),)
    assert request.messages == (
        Message("user", (TextPart("Weather in Paris and Oslo? Here is a map."),
                         BlobPart("image/png", PNG))),
        Message("assistant", (ToolCallPart("get_weather", {"city": "Paris"}, "call_a"),
                              ToolCallPart("get_weather", {"city": "Oslo"}, "call_b"))),
        Message("user", (ToolResultPart("get_weather", {"temp": 20}, "call_a"),
                         ToolResultPart("get_weather", {"content": "sunny, 12C"}, "call_b"))),
        Message("assistant", (TextPart("Paris 20, Oslo sunny."),)),
        Message("user", (TextPart("Thanks"),)),
    )
    assert request.tools == (FunctionTool("get_weather", "Current weather in a city",
                                          WEATHER["function"]["parameters"]),)
    assert request.tool_choice == ToolChoice(ToolMode.AUTO)
    assert request.params == GenerationParams(
        temperature=0.2, top_p=0.9, max_output_tokens=256, stop_sequences=("END",), seed=7,
        presence_penalty=0.5, frequency_penalty=-0.5, response_logprobs=True, logprobs=3,
    )
    assert request.output == OutputFormat("json", SCHEMA)
    assert request.thinking == ThinkingConfig(include_thoughts=True, level="MEDIUM")
    assert request.untranslated == ()
    assert request.extensions == {}


def test_round_trip_through_the_outbound_codec_gives_the_same_conversation() -> None:
    document = sdk_request(tools=[WEATHER], tool_choice="auto", reasoning_effort="high",
                           response_format={"type": "json_schema", "json_schema": {
                               "name": "reply", "schema": SCHEMA, "strict": True}},
                           max_completion_tokens=64, stop="END", seed=3, n=2)
    options = OpenAIOptions(supports_reasoning=True, max_tokens_field="max_completion_tokens")
    encoded = encode_request(decode(document), "upstream-model", stream=False, options=options)
    assert encoded.dropped == ()
    body = encoded.body
    assert body["messages"] == CONVERSATION
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == "auto"
    assert body["reasoning_effort"] == "high"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert (body["max_completion_tokens"], body["stop"], body["seed"], body["n"]) == (
        64, ["END"], 3, 2)


@pytest.mark.parametrize("content", [
    '{"temp": 20, "unit": "C"}',  # an object: the same JSON value comes back
    "plain words",
    '{"content": "looks wrapped"}',
    '{"output": "looks like a Gemini answer"}',
    '{"error": "looks like a Gemini failure"}',
    "[1, 2]",
    "",
])
def test_tool_message_content_round_trips(content: str) -> None:
    document = minimal(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": content},
    ])
    sent = encode_request(decode(document), "up", stream=False).body["messages"][2]["content"]
    if content.startswith("{") and "temp" in content:
        assert orjson.loads(sent) == orjson.loads(content)
    else:
        assert sent == content


def test_pydantic_strict_tools_become_validated_calls() -> None:
    class Lookup(BaseModel):
        city: str

    document = sent_body(lambda client: client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}],
        tools=[openai.pydantic_function_tool(Lookup)]))
    request = decode(document)
    assert request.tool_choice == ToolChoice(ToolMode.VALIDATED)
    assert request.tools[0].name == "Lookup"
    assert request.untranslated == ()


def test_strict_on_some_tools_only_is_reported() -> None:
    strict = {"type": "function", "function": {"name": "g", "strict": True}}
    request = decode(minimal(tools=[WEATHER, strict]))
    assert request.tool_choice == ToolChoice(ToolMode.AUTO)
    assert request.tools[1] == FunctionTool("g", "", None)
    assert request.untranslated == (Untranslated(
        "tools[1].function.strict", "strict schemas for only some functions cannot be carried",
        droppable=True),)


# --- messages ----------------------------------------------------------------------------------


def test_system_and_developer_messages_anywhere_are_system_text_in_order() -> None:
    request = decode(minimal(messages=[
        {"role": "developer", "content": [{"type": "text", "text": "Rule 1."},
                                          {"type": "text", "text": "Rule 2."}]},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "Late rule."},
        {"role": "assistant", "content": "hello"},
    ]))
    assert request.system == (TextPart("Rule 1."), TextPart("Rule 2."), TextPart("Late rule."))
    assert [m.role for m in request.messages] == ["user", "assistant"]


def test_assistant_reasoning_refusal_and_text_parts() -> None:
    request = decode(minimal(messages=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "reasoning_content": "Think first.",
         "content": [{"type": "text", "text": "Partly "}, {"type": "refusal", "refusal": "no."}]},
    ]))
    assert request.messages[1] == Message(
        "assistant", (ReasoningPart("Think first."), TextPart("Partly "), TextPart("no.")))


@pytest.mark.parametrize(("url", "mime"), [
    ("https://example.com/cat.png", "image/png"),
    ("https://example.com/photo.webp?size=large", "image/webp"),
    ("http://example.com/render", "image/jpeg"),
])
def test_image_urls_become_file_references(url: str, mime: str) -> None:
    request = decode(minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]))
    assert request.messages[0].parts == (FileRefPart(url, mime),)


def test_image_detail_is_reported_as_droppable() -> None:
    request = decode(minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "high"}}]}]))
    assert request.untranslated == (Untranslated(
        "messages[0].content[0].image_url.detail", "image detail is an OpenAI setting",
        droppable=True),)


def test_participant_name_is_reported_as_droppable() -> None:
    request = decode(minimal(messages=[{"role": "user", "name": "ana", "content": "hi"}]))
    assert [u.path for u in request.untranslated] == ["messages[0].name"]
    assert request.untranslated[0].droppable


def call_then(*after: dict[str, Any]) -> dict[str, Any]:
    return minimal(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        *after,
    ])


@pytest.mark.parametrize(("document", "param", "words"), [
    (minimal(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]),
     "messages[0].content[0]", "audio input is not supported"),
    (minimal(messages=[{"role": "user", "content": [
        {"type": "text", "text": "read"},
        {"type": "file", "file": {"file_id": "file-1"}}]}]),
     "messages[0].content[1]", "file inputs are not supported"),
    (minimal(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
     "messages[0].content[0].type", "Supported values are: 'text', 'image_url'"),
    (minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBERi0="}}]}]),
     "messages[0].content[0].image_url.url", "application/pdf is not an image type"),
    (minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]),
     "messages[0].content[0].image_url.url", "not valid base64"),
    (minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}]}]),
     "messages[0].content[0].image_url.url", "http(s) URL"),
    (minimal(messages=[{"role": "user", "content": []}]), "messages[0].content", "non-empty"),
    (minimal(messages=[{"role": "robot", "content": "x"}]), "messages[0].role",
     "Invalid value: 'robot'"),
    (minimal(messages=[{"content": "x"}]), "messages[0].role", "Missing required parameter"),
    (minimal(messages=[{"role": "function", "name": "f", "content": "x"}]), "messages[0].role",
     "legacy 'function' messages"),
    (minimal(messages=["hello"]), "messages[0]", "expected an object, but got a string"),
    (call_then({"role": "tool", "tool_call_id": "c9", "content": "x"}),
     "messages[2].tool_call_id", "'c9' answers no call"),
    (call_then({"role": "tool", "tool_call_id": "c1", "content": "x"},
               {"role": "tool", "tool_call_id": "c1", "content": "y"}),
     "messages[3].tool_call_id", "'c1' was already answered"),
    (call_then({"role": "user", "content": "wait"},
               {"role": "tool", "tool_call_id": "c1", "content": "x"}),
     "messages[3].role", "must be a response to a preceding message with 'tool_calls'"),
    (call_then({"role": "tool", "content": "x"}), "messages[2].tool_call_id", "Missing"),
    (minimal(messages=[{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]),
     "messages[0].tool_calls[0].function.arguments", "JSON object"),
    (minimal(messages=[{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "custom", "custom": {"name": "f", "input": "x"}}]}]),
     "messages[0].tool_calls[0].type", "Supported values are: 'function'"),
    (minimal(messages=[{"role": "assistant", "content": None}]), "messages[0].content",
     "needs content or tool_calls"),
    (minimal(messages=[{"role": "assistant", "content": "x", "audio": {"id": "a1"}}]),
     "messages[0].audio", "not supported"),
])
def test_message_refusals_name_the_parameter(
    document: dict[str, Any], param: str, words: str
) -> None:
    error = refusal(document)
    assert first_param(error) == param
    assert words in error.message


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "param", "words"), [
    ({"temperature": 2.5}, "temperature", "Expected a value <= 2, but got 2.5 instead."),
    ({"temperature": -0.1}, "temperature", "Expected a value >= 0, but got -0.1 instead."),
    ({"temperature": "hot"}, "temperature", "expected a decimal, but got a string instead"),
    ({"top_p": 1.5}, "top_p", "decimal above maximum value"),
    ({"presence_penalty": 3}, "presence_penalty", "Expected a value <= 2, but got 3"),
    ({"frequency_penalty": -2.5}, "frequency_penalty", "Expected a value >= -2"),
    ({"n": 0}, "n", "integer below minimum value"),
    ({"n": 129}, "n", "Expected a value <= 128"),
    ({"n": 1.5}, "n", "expected an integer, but got a decimal"),
    ({"max_tokens": 0}, "max_tokens", "Expected a value >= 1, but got 0"),
    ({"max_completion_tokens": True}, "max_completion_tokens", "but got a boolean"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs", "Expected a value <= 20"),
    ({"top_logprobs": 2}, "top_logprobs", "'logprobs' must be set to true"),
    ({"logprobs": "yes"}, "logprobs", "expected a boolean"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "maximum length 4, but got 5"),
    ({"stop": [1]}, "stop", "a string or an array of strings"),
    ({"seed": "7"}, "seed", "expected an integer"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", "Invalid value: 'extreme'"),
    ({"response_format": {"type": "yaml"}}, "response_format.type", "Invalid value: 'yaml'"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "Missing"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
     "response_format.json_schema.name", "Missing"),
    ({"response_format": {"type": "json_schema",
                          "json_schema": {"name": "x", "schema": "object"}}},
     "response_format.json_schema.schema", "expected an object"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "Supported values are: 'function'"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]},
     "tools[0].function.name", "letters, digits"),
    ({"tools": {"type": "function"}}, "tools", "expected an array"),
    ({"tool_choice": "auto"}, "tool_choice", "only allowed when 'tools' are specified"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "Invalid value"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name", "no function named 'nope'"),
    ({"tools": [WEATHER], "tool_choice": {"type": "custom", "custom": {"name": "x"}}},
     "tool_choice.type", "Invalid value: 'custom'"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "expected a boolean"),
])
def test_parameter_refusals_name_the_parameter(
    fields: dict[str, Any], param: str, words: str
) -> None:
    error = refusal(minimal(**fields))
    assert first_param(error) == param
    assert words in error.message


def test_limits_are_inclusive() -> None:
    request = decode(minimal(temperature=2, top_p=0, presence_penalty=-2, frequency_penalty=2,
                             n=128, top_logprobs=20, logprobs=True))
    assert request.params.temperature == 2.0
    assert request.params.candidate_count == 128
    assert request.params.logprobs == 20


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert decode(minimal(max_tokens=10)).params.max_output_tokens == 10
    both = minimal(max_tokens=10, max_completion_tokens=20)
    assert decode(both).params.max_output_tokens == 20


def test_nulls_count_as_not_given() -> None:
    request = decode(minimal(temperature=None, stop=None, tools=None, tool_choice=None,
                             response_format=None, reasoning_effort=None, logit_bias=None))
    assert request.params == GenerationParams()
    assert (request.output, request.thinking, request.untranslated) == (None, None, ())


def test_top_k_is_taken_as_openai_compatible_servers_take_it() -> None:
    assert decode(minimal(top_k=40)).params.top_k == 40


@pytest.mark.parametrize(("effort", "thinking"), [
    ("none", ThinkingConfig(budget=0)),
    ("minimal", ThinkingConfig(include_thoughts=True, level="MINIMAL")),
    ("low", ThinkingConfig(include_thoughts=True, level="LOW")),
    ("medium", ThinkingConfig(include_thoughts=True, level="MEDIUM")),
    ("high", ThinkingConfig(include_thoughts=True, level="HIGH")),
    ("xhigh", ThinkingConfig(include_thoughts=True, level="XHIGH")),
    ("max", ThinkingConfig(include_thoughts=True, level="XHIGH")),
])
def test_reasoning_effort(effort: str, thinking: ThinkingConfig) -> None:
    assert decode(minimal(reasoning_effort=effort)).thinking == thinking


@pytest.mark.parametrize(("response_format", "output"), [
    ({"type": "text"}, None),
    ({"type": "json_object"}, OutputFormat("json")),
    ({"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA}},
     OutputFormat("json", SCHEMA)),
    ({"type": "json_schema", "json_schema": {"name": "r"}}, OutputFormat("json")),
])
def test_response_format(response_format: dict[str, Any], output: OutputFormat | None) -> None:
    assert decode(minimal(response_format=response_format)).output == output


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", ToolChoice(ToolMode.AUTO)),
    ("none", ToolChoice(ToolMode.NONE)),
    ("required", ToolChoice(ToolMode.ANY)),
    ({"type": "function", "function": {"name": "get_weather"}},
     ToolChoice(ToolMode.ANY, ("get_weather",))),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "function", "function": {"name": "get_weather"}}]}},
     ToolChoice(ToolMode.AUTO, ("get_weather",))),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_weather"}}]}},
     ToolChoice(ToolMode.ANY, ("get_weather",))),
])
def test_tool_choice(choice: Any, expected: ToolChoice) -> None:
    assert decode(minimal(tools=[WEATHER], tool_choice=choice)).tool_choice == expected


# --- fields with no canonical meaning ------------------------------------------------------------


def test_tuning_knobs_are_droppable_and_ride_in_extensions() -> None:
    request = decode(minimal(logit_bias={"50256": -100}, parallel_tool_calls=False,
                             service_tier="flex", user="u", metadata={"a": "b"}, store=True,
                             safety_identifier="s", prompt_cache_key="k", stream=True))
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("logit_bias", True), ("parallel_tool_calls", True), ("service_tier", True)]
    assert request.extensions == {"openai": {"logit_bias": {"50256": -100},
                                             "parallel_tool_calls": False,
                                             "service_tier": "flex"}}


def test_requests_only_openai_can_serve_are_not_droppable() -> None:
    request = decode(minimal(audio={"voice": "alloy", "format": "wav"},
                             modalities=["text", "audio"], web_search_options={},
                             frobnicate=1))
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("audio", False), ("modalities", False), ("web_search_options", False),
        ("frobnicate", False)]
    assert request.extensions["openai"]["frobnicate"] == 1


def test_defaults_ask_for_nothing() -> None:
    request = decode(minimal(parallel_tool_calls=True, modalities=["text"]))
    assert request.untranslated == ()
    assert request.extensions == {}


# --- the document itself, streaming switches, estimates ----------------------------------------


@pytest.mark.parametrize(("body", "param", "words"), [
    (b"{not json", None, "could not parse the JSON body"),
    (b"[]", None, "expected an object"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model",
     "you must provide a model parameter"),
    (b'{"model": 4, "messages": [{"role": "user", "content": "x"}]}', "model",
     "expected a string, but got an integer"),
    (b'{"model": "m"}', "messages", "Missing required parameter: 'messages'."),
    (b'{"model": "m", "messages": "hi"}', "messages", "expected an array of objects"),
    (b'{"model": "m", "messages": []}', "messages", "empty array"),
])
def test_read_chat_document_refusals(body: bytes, param: str | None, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_chat_document(body)
    assert words in caught.value.message
    assert next(iter(caught.value.violations), None) == param


def test_stream_switches() -> None:
    assert not wants_stream(minimal())
    assert wants_stream(minimal(stream=True))
    assert wants_usage_in_stream(minimal(stream=True, stream_options={"include_usage": True}))
    assert not wants_usage_in_stream(minimal(stream=True, stream_options={}))
    assert not wants_usage_in_stream(minimal(stream=True))


@pytest.mark.parametrize(("fields", "check", "param"), [
    ({"stream": "true"}, wants_stream, "stream"),
    ({"stream": True, "stream_options": {"include_usage": 1}}, wants_usage_in_stream,
     "stream_options.include_usage"),
    ({"stream": True, "stream_options": []}, wants_usage_in_stream, "stream_options"),
    ({"stream_options": {"include_usage": True}}, wants_usage_in_stream, "stream_options"),
])
def test_stream_switch_refusals(fields: dict[str, Any], check: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check(minimal(**fields))
    assert first_param(caught.value) == param


def test_estimate_counts_text_and_images_and_reads_the_output_limit() -> None:
    text = "x" * 300
    document = minimal(messages=[{"role": "user", "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": PNG_URL * 50}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]}], max_tokens=50, max_completion_tokens=70)
    tokens, limit = estimate_chat(document)
    # every string outside the image parts: "user", "text" and the 300 characters
    assert tokens == (4 + 4 + 300) // 3 + 2 * 258 + 1
    assert limit == 70
    assert estimate_chat(minimal())[1] is None
    assert estimate_chat(minimal(max_tokens=5))[1] == 5
