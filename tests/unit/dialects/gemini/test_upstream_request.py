"""Canonical → Gemini request encoding, proved against the inbound decoder: what the encoder
writes, the decoder reads back as the same canonical request."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
)
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.paths import PARAM_FIELDS
from cometgate.dialects.gemini.upstream_request import VALIDATOR_SKIP_SIGNATURE, encode_request
from cometgate.errors import InvalidRequest

WIRE = Path(__file__).parents[3] / "wire" / "gemini"
WEATHER = FunctionTool(
    "get_weather", "Weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = FunctionTool("get_time")


def ask(*messages: Message, **options: Any) -> GenerateRequest:
    return GenerateRequest(model="gemini-x", messages=messages, **options)


def user(*parts: Part) -> Message:
    return Message("user", parts)


def model(*parts: Part) -> Message:
    return Message("assistant", parts)


def body_of(request: GenerateRequest, **options: Any) -> dict[str, Any]:
    encoded = encode_request(request, "gemini-up", stream=False, **options)
    assert encoded.dropped == ()
    return encoded.body


def round_trip(request: GenerateRequest) -> GenerateRequest:
    # Through bytes, as the HTTP provider sends it.
    return decode_generate_request(orjson.dumps(body_of(request)), request.model)


ROUND_TRIPS = {
    "text": ask(user(TextPart("hi"))),
    "multi-turn with system": ask(
        user(TextPart("Hello")),
        model(TextPart("Hi! How can I help?", signature=b"\x01\x89\xf3")),
        user(TextPart("Tell me a joke."), TextPart("A short one.")),
        system=(TextPart("You are terse."), TextPart("Answer in French.")),
    ),
    "images and files": ask(user(
        TextPart("look"),
        BlobPart("image/png", b"\x89PNG\r\n\x1a\n\x00\xff"),
        FileRefPart("https://generativelanguage.googleapis.com/v1beta/files/abc",
                    "application/pdf"),
        FileRefPart("https://www.youtube.com/watch?v=9hE5-98ZeCg"),
    )),
    "tools with ids": ask(
        user(TextPart("Weather in Paris?")),
        model(ToolCallPart("get_weather", {"city": "Paris"}, "call-1", b"sig-1")),
        user(ToolResultPart("get_weather", {"temp": 20, "sky": ["clear"]}, "call-1")),
        tools=(WEATHER, CLOCK),
    ),
    "parallel calls": ask(
        user(TextPart("Paris and Rome?")),
        model(ToolCallPart("get_weather", {"city": "Paris"}, "a", b"only-the-first"),
              ToolCallPart("get_weather", {"city": "Rome"}, "b")),
        user(ToolResultPart("get_weather", {"temp": 20}, "a"),
             ToolResultPart("get_weather", {"temp": 25}, "b")),
        tools=(WEATHER,), tool_choice=ToolChoice(ToolMode.ANY, ("get_weather",)),
    ),
    "calls without ids": ask(
        user(TextPart("Weather?")),
        model(ToolCallPart("get_weather", {})),
        user(ToolResultPart("get_weather", {"error": "no city"})),
        tools=(WEATHER,), tool_choice=ToolChoice(ToolMode.NONE),
    ),
    "json schema": ask(
        user(TextPart("a record")),
        output=OutputFormat("json", {"type": "object", "properties": {
            "name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["name"], "additionalProperties": False}),
        tools=(WEATHER,), tool_choice=ToolChoice(ToolMode.VALIDATED),
    ),
    "json without schema": ask(user(TextPart("json please")), output=OutputFormat("json")),
    "enum": ask(user(TextPart("mood?")),
                output=OutputFormat("enum", {"type": "string", "enum": ["happy", "sad"]})),
    "thinking with signatures": ask(
        user(TextPart("2+2?")),
        model(ReasoningPart("adding", signature=b"\x00thought"), ReasoningPart("more"),
              TextPart("4"), TextPart("", signature=b"tail")),
        user(TextPart("and 3+3?")),
        thinking=ThinkingConfig(include_thoughts=True, budget=1024),
    ),
    "thinking level": ask(user(TextPart("hi")), thinking=ThinkingConfig(level="HIGH")),
    "thinking off": ask(user(TextPart("hi")), thinking=ThinkingConfig(budget=0)),
    "thinking empty": ask(user(TextPart("hi")), thinking=ThinkingConfig()),
    "params": ask(user(TextPart("hi")), params=GenerationParams(
        temperature=0.5, top_p=0.75, top_k=20, max_output_tokens=256,
        stop_sequences=("END", "STOP"), seed=42, presence_penalty=0.25,
        frequency_penalty=-0.5, candidate_count=2, response_logprobs=True, logprobs=3)),
    "zero params": ask(user(TextPart("hi")), params=GenerationParams(
        temperature=0.0, top_p=0.0, seed=0, presence_penalty=0.0)),
}


@pytest.mark.parametrize("request_", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_the_inbound_decoder_reads_back_the_same_request(request_: GenerateRequest) -> None:
    assert round_trip(request_) == request_


def test_wire_shape_of_a_whole_request() -> None:
    body = body_of(ROUND_TRIPS["tools with ids"])
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [{
                "functionCall": {"id": "call-1", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnLTE=",
            }]},
            {"role": "user", "parts": [{"functionResponse": {
                "id": "call-1", "name": "get_weather",
                "response": {"temp": 20, "sky": ["clear"]}}}]},
        ],
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather in a city",
             "parametersJsonSchema": WEATHER.parameters},
            {"name": "get_time"},
        ]}],
    }


def test_wire_shape_of_settings() -> None:
    body = body_of(ROUND_TRIPS["params"])
    assert body["generationConfig"] == {
        "temperature": 0.5, "topP": 0.75, "topK": 20, "maxOutputTokens": 256,
        "stopSequences": ["END", "STOP"], "seed": 42, "presencePenalty": 0.25,
        "frequencyPenalty": -0.5, "candidateCount": 2, "responseLogprobs": True, "logprobs": 3,
    }
    thinking = body_of(ROUND_TRIPS["thinking with signatures"])
    assert thinking["generationConfig"] == {
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}}
    assert thinking["contents"][1]["parts"][0] == {
        "text": "adding", "thought": True, "thoughtSignature": "AHRob3VnaHQ="}
    enum = body_of(ROUND_TRIPS["enum"])["generationConfig"]
    assert enum == {"responseMimeType": "text/x.enum",
                    "responseSchema": {"type": "STRING", "enum": ["happy", "sad"]}}
    json_output = body_of(ROUND_TRIPS["json schema"])
    assert json_output["generationConfig"]["responseJsonSchema"]["additionalProperties"] is False
    assert json_output["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert body_of(ROUND_TRIPS["multi-turn with system"])["systemInstruction"] == {
        "parts": [{"text": "You are terse."}, {"text": "Answer in French."}]}


def test_every_generation_parameter_has_a_gemini_name() -> None:
    assert set(PARAM_FIELDS) == {spec.name for spec in fields(GenerationParams)}


def test_defaults_are_left_out() -> None:
    assert body_of(ask(user(TextPart("hi")))) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# --- meaning kept where Gemini would refuse the literal form ------------------------------


def test_allowed_names_under_auto_narrow_the_declarations() -> None:
    request = ask(user(TextPart("hi")), tools=(WEATHER, CLOCK),
                  tool_choice=ToolChoice(ToolMode.AUTO, ("get_time",)))
    body = body_of(request)
    assert body["tools"] == [{"functionDeclarations": [{"name": "get_time"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    decoded = round_trip(request)
    assert [tool.name for tool in decoded.tools] == ["get_time"]


def test_allowed_names_under_none_are_left_out() -> None:
    request = ask(user(TextPart("hi")), tools=(WEATHER,),
                  tool_choice=ToolChoice(ToolMode.NONE, ("get_weather",)))
    assert body_of(request)["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert round_trip(request).tool_choice == ToolChoice(ToolMode.NONE)


def test_logprobs_turn_on_response_logprobs() -> None:
    request = ask(user(TextPart("hi")), params=GenerationParams(logprobs=5))
    assert body_of(request)["generationConfig"] == {"logprobs": 5, "responseLogprobs": True}
    assert round_trip(request).params == GenerationParams(logprobs=5, response_logprobs=True)


def test_a_result_without_a_name_takes_the_name_of_its_call() -> None:
    request = ask(user(TextPart("time?")), model(ToolCallPart("get_time", {}, "call_9")),
                  user(ToolResultPart("", {"content": "noon"}, "call_9")), tools=(CLOCK,))
    result = body_of(request)["contents"][2]["parts"][0]["functionResponse"]
    assert result == {"id": "call_9", "name": "get_time", "response": {"content": "noon"}}


def test_lower_case_thinking_level_is_sent_as_gemini_spells_it() -> None:
    body = body_of(ask(user(TextPart("hi")), thinking=ThinkingConfig(level="low")))
    assert body["generationConfig"] == {"thinkingConfig": {"thinkingLevel": "LOW"}}


def test_a_message_without_parts_is_left_out() -> None:
    body = body_of(ask(user(TextPart("a")), model(), user(TextPart("b"))))
    assert [content["role"] for content in body["contents"]] == ["user", "user"]


def test_the_same_body_streams() -> None:
    request = ROUND_TRIPS["tools with ids"]
    assert encode_request(request, "m", stream=True) == encode_request(request, "m", stream=False)


# --- what cannot be sent --------------------------------------------------------------------


def test_a_system_instruction_holds_only_text() -> None:
    with pytest.raises(InvalidRequest) as caught:
        encode_request(ask(user(TextPart("hi")), system=(BlobPart("image/png", b"x"),)),
                       "m", stream=False)
    assert caught.value.violations == {"system[0]": "must be text"}


def test_a_signature_on_the_system_instruction_is_reported() -> None:
    encoded = encode_request(
        ask(user(TextPart("hi")), system=(TextPart("terse", signature=b"s"),)), "m",
        stream=False)
    assert encoded.body["systemInstruction"] == {"parts": [{"text": "terse"}]}
    assert encoded.dropped == ("system[0].signature: a system instruction has no thoughts",)


def test_enum_output_needs_its_values() -> None:
    with pytest.raises(InvalidRequest):
        encode_request(ask(user(TextPart("hi")), output=OutputFormat("enum")), "m", stream=False)
    with pytest.raises(InvalidRequest):
        encode_request(ask(user(TextPart("hi")),
                           output=OutputFormat("enum", {"type": "string", "enum": [1, 2]})),
                       "m", stream=False)


# --- histories begun on another model -------------------------------------------------------


def test_unsigned_calls_are_vouched_for_only_when_asked() -> None:
    request = ask(
        user(TextPart("Paris and Rome?")),
        model(TextPart("Let me check."), ToolCallPart("get_weather", {"city": "Paris"}, "a"),
              ToolCallPart("get_weather", {"city": "Rome"}, "b")),
        user(ToolResultPart("get_weather", {"t": 1}, "a"),
             ToolResultPart("get_weather", {"t": 2}, "b")),
        model(ToolCallPart("get_time", {}, "c", signature=b"real")),
        tools=(WEATHER, CLOCK),
    )
    assert VALIDATOR_SKIP_SIGNATURE not in orjson.dumps(body_of(request)).decode()
    vouched = body_of(request, vouch_unsigned_calls=True)["contents"]
    signatures = [[part.get("thoughtSignature") for part in content["parts"]]
                  for content in vouched]
    assert signatures == [[None], [None, VALIDATOR_SKIP_SIGNATURE, None], [None, None],
                          ["cmVhbA=="]]


def test_the_stand_in_signature_is_valid_base64_for_google() -> None:
    # Google's bytes field decodes it; so does our own reader of Gemini bodies.
    body = body_of(ask(user(TextPart("x")), model(ToolCallPart("get_time", {})),
                       tools=(CLOCK,)), vouch_unsigned_calls=True)
    decoded = decode_generate_request(orjson.dumps(body), "m")
    call = decoded.messages[1].parts[0]
    assert isinstance(call, ToolCallPart) and call.signature is not None
