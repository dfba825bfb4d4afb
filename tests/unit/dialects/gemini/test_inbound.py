"""Request decoding: the captured google-genai bodies, and every refusal rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

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
    WebSearchTool,
)
from cometgate.dialects.gemini.caller_request import (
    decode_count_tokens_request,
    decode_generate_request,
)
from cometgate.errors import InvalidRequest

WIRE = Path(__file__).parents[3] / "wire" / "gemini"


def _fixture(name: str) -> bytes:
    return (WIRE / f"{name}.request.json").read_bytes()


def _decode(body: dict[str, Any]) -> Any:
    return decode_generate_request(orjson.dumps(body), "m")


def _untranslated(request: Any) -> dict[str, bool]:
    return {u.path: u.droppable for u in request.untranslated}


def test_full_config() -> None:
    req = decode_generate_request(_fixture("full-config"), "gemini-2.5-flash")
    assert req.model == "gemini-2.5-flash"
    assert req.messages == (Message("user", (TextPart("hi"),)),)
    assert req.system == (TextPart("You are terse."),)
    assert req.tools == (
        FunctionTool(
            "get_weather",
            "Get weather",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        ),
    )
    assert req.tool_choice == ToolChoice(ToolMode.ANY, ("get_weather",))
    p = req.params
    assert (p.temperature, p.top_k, p.max_output_tokens, p.seed) == (
        pytest.approx(0.3),
        20,
        256,
        42,
    )
    assert (p.stop_sequences, p.response_logprobs, p.logprobs) == (("END",), True, 3)
    assert req.output == OutputFormat(
        "json", {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    )
    assert req.thinking == ThinkingConfig(include_thoughts=True, budget=1024)
    assert _untranslated(req) == {
        "safetySettings": True,
        "generationConfig.mediaResolution": True,
        "cachedContent": False,
        "labels": True,
    }
    raw = req.extensions["gemini"]["untranslated"]
    assert raw["cachedContent"] == "cachedContents/abc123"
    assert raw["safetySettings"] == [
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_ONLY_HIGH"}
    ]


def test_json_schema_level_tools() -> None:
    req = decode_generate_request(_fixture("json-schema-level-tools"), "m")
    assert req.output == OutputFormat(
        "json", {"type": "object", "properties": {"a": {"type": "string"}}}
    )
    assert req.thinking == ThinkingConfig(level="HIGH")
    assert _untranslated(req) == {}
    # URL context has a canonical meaning (served natively or by the gateway's fetches);
    # its JSON still rides along for a Gemini upstream.
    assert req.url_context and not req.google_maps
    assert req.code_execution  # canonical: the pipeline decides who runs it
    # TEXT and IMAGE are canonical: a model configured for images draws, others refuse.
    assert req.response_modalities == ("TEXT", "IMAGE")
    assert req.extensions["gemini"]["tools"] == [
        {"googleSearch": {}},
        {"codeExecution": {}},
        {"urlContext": {}},
    ]
    # Google Search grounding is a canonical web search, which any searching upstream serves.
    assert req.web_search == WebSearchTool(path="tools[0].googleSearch")


@pytest.mark.parametrize("tool", ["googleSearchRetrieval", "google_search_retrieval",
                                  "google_search"])
def test_search_tools_ask_for_a_web_search(tool: str) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}], "tools": [{tool: {}}]}
    req = decode_generate_request(orjson.dumps(body), "m")
    camel = "googleSearchRetrieval" if "retrieval" in tool.lower() else "googleSearch"
    assert req.web_search == WebSearchTool(path=f"tools[0].{camel}")
    assert req.untranslated == ()
    assert req.extensions["gemini"]["tools"] == [{camel: {}}]


def test_multipart_history() -> None:
    req = decode_generate_request(_fixture("multipart"), "m")
    assert req.messages[0].parts == (
        TextPart("look"),
        BlobPart("image/png", b"\x89PNG"),
        FileRefPart(
            "https://generativelanguage.googleapis.com/v1beta/files/abc", "application/pdf"
        ),
    )
    assert req.messages[1] == Message(
        "assistant", (ToolCallPart("get_weather", {"city": "Paris"}, None, b"sig-bytes"),)
    )
    assert req.messages[2].parts == (ToolResultPart("get_weather", {"temp": 20}),)
    assert req.messages[3].parts == (ReasoningPart("thinking..."),)
    assert _untranslated(req) == {  # left out for other upstreams, and named
        "contents[3].parts[1].executableCode": True,
        "contents[3].parts[2].codeExecutionResult": True,
    }
    raw = req.extensions["gemini"]["untranslated"]
    assert raw["contents[3].parts[1].executableCode"] == {
        "executableCode": {"language": "PYTHON", "code": "print(1)"}
    }


def test_pydantic_schema() -> None:
    req = decode_generate_request(_fixture("pydantic-schema"), "m")
    assert req.output is not None and req.output.schema == {
        "type": "array",
        "title": "Placeholder",
        "items": {
            "type": "object",
            "title": "Rec",
            "required": ["name", "age", "tags"],
            "propertyOrdering": ["name", "age", "tags"],
            "properties": {
                "name": {"type": "string", "title": "Name"},
                "age": {"type": "integer", "title": "Age"},
                "tags": {"type": "array", "title": "Tags", "items": {"type": "string"}},
            },
        },
    }


def test_afc_second_request() -> None:
    req = decode_generate_request(_fixture("afc-second"), "m")
    call = req.messages[1].parts[0]
    assert call == ToolCallPart("get_temp", {"city": "Paris"}, "call-1", b"sig\xfb\xff")
    assert req.messages[2].parts == (ToolResultPart("get_temp", {"result": {"t": 1}}),)
    assert req.tools[0].parameters == {
        "properties": {"city": {"title": "City", "type": "string"}},
        "required": ["city"],
        "type": "object",
    }
    assert _untranslated(req) == {"tools[0].functionDeclarations[0].responseJsonSchema": True}


def test_chat_turn_two_keeps_url_safe_signature_bytes() -> None:
    req = decode_generate_request(_fixture("chat-turn2"), "m")
    assert req.messages[1].parts == (
        TextPart("Hi! How can I help?", bytes.fromhex("018f3d6bff3ecf")),
    )
    assert req.messages[2].parts[1] == BlobPart("image/png", b"\x89PNG")
    assert req.untranslated == ()
    assert req.extensions == {}


def test_snake_case_request_decodes_the_same() -> None:
    camel = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "generationConfig": {
            "maxOutputTokens": 5,
            "responseMimeType": "text/x.enum",
            "responseSchema": {"type": "string", "enum": ["a", "b"]},
        },
    }
    snake = {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "generation_config": {
            "max_output_tokens": 5,
            "response_mime_type": "text/x.enum",
            "response_schema": {"type": "STRING", "enum": ["a", "b"]},
        },
    }
    assert _decode(camel) == _decode(snake)
    assert _decode(camel).output == OutputFormat("enum", {"type": "string", "enum": ["a", "b"]})


_USER = [{"role": "user", "parts": [{"text": "x"}]}]
_FN = [{"functionDeclarations": [{"name": "f"}]}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified"),
        (
            {"contents": [{"parts": [{"thought": True}]}]},
            "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' must "
            "have one initialized field",
        ),
        (
            {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
            "* GenerateContentRequest.contents[0].role: Please use a valid role: user, model.",
        ),
        (
            {"contents": _USER, "systemInstruction": {"parts": [{"inlineData": {"data": ""}}]}},
            "* GenerateContentRequest.system_instruction.parts[0]: Only text parts are supported "
            "in system instructions.",
        ),
        (
            {"contents": _USER, "generationConfig": {"candidateCount": 0}},
            "* GenerateContentRequest.generation_config.candidate_count: candidate_count must be "
            "in the range [1, 8].",
        ),
        ({"contents": _USER, "generationConfig": {"candidateCount": 9}}, "candidate_count"),
        (
            {"contents": _USER, "generationConfig": {"temperature": 2.5}},
            "* GenerateContentRequest.generation_config.temperature: temperature must be in the "
            "range [0.0, 2.0].",
        ),
        ({"contents": _USER, "generationConfig": {"topP": 1.1}}, "top_p must be"),
        ({"contents": _USER, "generationConfig": {"topK": 0}}, "top_k must be"),
        ({"contents": _USER, "generationConfig": {"maxOutputTokens": 0}}, "max_output_tokens"),
        ({"contents": _USER, "generationConfig": {"presencePenalty": 2.0}}, "presence_penalty"),
        ({"contents": _USER, "generationConfig": {"frequencyPenalty": -2.1}}, "frequency_penalty"),
        (
            {"contents": _USER, "generationConfig": {"stopSequences": list("abcdef")}},
            "at most 5 stop sequences",
        ),
        ({"contents": _USER, "generationConfig": {"logprobs": 3}}, "only valid if"),
        (
            {"contents": _USER, "generationConfig": {"responseLogprobs": True, "logprobs": 21}},
            "logprobs must be in the range [0, 20].",
        ),
        (
            {"contents": _USER, "generationConfig": {"responseMimeType": "text/html"}},
            "* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are "
            "`text/plain`, `application/json`, `application/xml`, `application/yaml` and "
            "`text/x.enum`.",
        ),
        (
            {"contents": _USER, "generationConfig": {"responseSchema": {"type": "STRING"}}},
            "response_mime_type must be application/json or text/x.enum",
        ),
        (
            {
                "contents": _USER,
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {"type": "STRING"},
                    "responseJsonSchema": {"type": "string"},
                },
            },
            "cannot both be set",
        ),
        (
            {
                "contents": _USER,
                "generationConfig": {
                    "responseMimeType": "text/x.enum",
                    "responseSchema": {"type": "INTEGER"},
                },
            },
            "text/x.enum requires",
        ),
        (
            {
                "contents": _USER,
                "generationConfig": {
                    "thinkingConfig": {"thinkingBudget": 5, "thinkingLevel": "LOW"}
                },
            },
            "You can only set only one of thinking budget and thinking level.",
        ),
        (
            {"contents": _USER, "tools": [{"functionDeclarations": [{"name": "9lives"}]}]},
            "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function "
            "name.",
        ),
        (
            {"contents": _USER, "tools": [{"functionDeclarations": [{"name": "a" * 129}]}]},
            "Invalid function name.",
        ),
        (
            {
                "contents": _USER,
                "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "f"}]}],
            },
            "Duplicate function declaration: f",
        ),
        (
            {
                "contents": _USER,
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {"type": "OBJECT"},
                                "parametersJsonSchema": {},
                            }
                        ]
                    }
                ],
            },
            "parameters and parameters_json_schema cannot both be set.",
        ),
        (
            {
                "contents": _USER,
                "tools": _FN,
                "toolConfig": {
                    "functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["f"]}
                },
            },
            "allowed_function_names may only be set when mode is ANY",
        ),
        (
            {
                "contents": _USER,
                "tools": _FN,
                "toolConfig": {
                    "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["g"]}
                },
            },
            "function name 'g' is not declared in tools.",
        ),
        (
            {
                "contents": _USER,
                "safetySettings": [
                    {"category": "HARM_CATEGORY_DEROGATORY", "threshold": "BLOCK_NONE"}
                ],
            },
            "* GenerateContentRequest.safety_settings[0]: element predicate failed: $.category in "
            "(HarmCategory.HARM_CATEGORY_HATE_SPEECH, ",
        ),
        (
            {
                "contents": _USER,
                "safetySettings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
                ],
            },
            "Multiple safety settings with the same category.",
        ),
        (
            {
                "contents": _USER,
                "safetySettings": [{"category": "HARM_CATEGORY_JAILBREAK", "threshold": "OFF"}],
            },
            "Invalid value at 'safety_settings[0].category' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), "
            '"HARM_CATEGORY_JAILBREAK"',
        ),
    ],
)
def test_refusals(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _decode(body)
    assert message in caught.value.message
    assert caught.value.violations


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Invalid JSON payload received. Unexpected token."),
        (b"[1]", "Invalid JSON payload received. Root element must be a message."),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match="Invalid JSON payload received") as caught:
        decode_generate_request(body, "m")
    assert caught.value.message == message


def test_untranslated_top_level_and_config_fields() -> None:
    req = _decode(
        {
            "contents": _USER,
            "serviceTier": "flex",
            "store": True,
            "continuationToken": "AAE=",
            "toolConfig": {"retrievalConfig": {}},
            "generationConfig": {
                "speechConfig": {"language_code": "en"},
                "responseModalities": ["TEXT"],
            },
        }
    )
    assert _untranslated(req) == {
        "serviceTier": True,
        "store": True,
        "continuationToken": False,
        "toolConfig.retrievalConfig": True,
        "generationConfig.speechConfig": False,
    }
    assert req.response_modalities == ("TEXT",)
    raw = req.extensions["gemini"]["untranslated"]
    assert raw["generationConfig.speechConfig"] == {"languageCode": "en"}
    assert raw["continuationToken"] == "AAE="


def test_modalities_other_than_text_and_image_stay_untranslated() -> None:
    req = decode_generate_request(orjson.dumps({
        "contents": [{"parts": [{"text": "hi"}]}],
        "generationConfig": {"response_modalities": ["audio", "Image"]}}), "m")
    assert req.response_modalities == ("IMAGE",)
    (entry,) = req.untranslated
    assert entry.path == "generationConfig.responseModalities" and not entry.droppable
    assert entry.reason == "only Gemini models produce audio or video output"


def test_count_tokens_contents_or_inner_request() -> None:
    plain = decode_count_tokens_request(b'{"contents":[{"parts":[{"text":"hello world"}]}]}', "m")
    assert plain.messages == (Message("user", (TextPart("hello world"),)),)
    inner = decode_count_tokens_request(
        orjson.dumps(
            {
                "generateContentRequest": {
                    "model": "models/m",
                    "contents": _USER,
                    "systemInstruction": {"parts": [{"text": "s"}]},
                    "cachedContent": "cachedContents/x",
                }
            }
        ),
        "m",
    )
    assert inner.system == (TextPart("s"),)
    assert _untranslated(inner) == {"generateContentRequest.cachedContent": False}


@pytest.mark.parametrize(
    "body",
    [b"{}", orjson.dumps({"contents": _USER, "generateContentRequest": {"contents": _USER}})],
)
def test_count_tokens_needs_exactly_one_form(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match=r"\* CountTokensRequest\.contents: "):
        decode_count_tokens_request(body, "m")


def test_count_tokens_inner_errors_carry_the_inner_path() -> None:
    body = orjson.dumps({"generateContentRequest": {"contents": [{"role": "bot", "parts": []}]}})
    with pytest.raises(InvalidRequest) as caught:
        decode_count_tokens_request(body, "m")
    assert "generate_content_request.contents[0].role" in caught.value.violations
