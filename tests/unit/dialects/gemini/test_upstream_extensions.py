"""A Gemini caller's fields with no canonical meaning (kept in extensions["gemini"] by the
inbound decoder) put back in place when its request goes to a Gemini upstream by translation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cometgate.canonical import GenerateRequest, GenerationParams, Message, Part, TextPart
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.upstream_request import encode_request

WIRE = Path(__file__).parents[3] / "wire" / "gemini"


def ask(*messages: Message, **options: Any) -> GenerateRequest:
    return GenerateRequest(model="gemini-x", messages=messages, **options)


def user(*parts: Part) -> Message:
    return Message("user", parts)


def body_of(request: GenerateRequest) -> dict[str, Any]:
    encoded = encode_request(request, "gemini-up", stream=False)
    assert encoded.dropped == ()
    return encoded.body


def round_trip(request: GenerateRequest) -> GenerateRequest:
    return decode_generate_request(orjson.dumps(body_of(request)), request.model)


@pytest.mark.parametrize("name", ["full-config", "multipart", "chat-turn2", "afc-second",
                                  "json-schema-level-tools", "pydantic-schema"])
def test_captured_sdk_requests_survive_decode_encode_decode(name: str) -> None:
    first = decode_generate_request((WIRE / f"{name}.request.json").read_bytes(), "m")
    assert round_trip(first) == first


def test_fields_without_canonical_meaning_go_back_where_they_were() -> None:
    caller = {
        "contents": [
            {"role": "user", "parts": [
                {"text": "clip", "videoMetadata": {"startOffset": "1s", "endOffset": "2.5s"}},
                {"fileData": {"fileUri": "https://youtu.be/x"}, "thoughtSignature": "AQI=",
                 "partMetadata": {"k": "v"}},
            ]},
            {"role": "model", "parts": [
                {"executableCode": {"code": "print(1)", "language": "PYTHON"}},
                {"text": "ran it"},
                {"toolCall": {"id": "t1", "toolType": "GOOGLE_SEARCH_WEB", "args": {"q": "x"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [{"functionResponse": {
                "name": "get_time", "response": {"t": 1}, "willContinue": True,
                "scheduling": "SILENT"}}]},
        ],
        "tools": [{"googleSearch": {}}, {"functionDeclarations": [
            {"name": "get_time", "behavior": "NON_BLOCKING",
             "responseJsonSchema": {"type": "object"}}]}, {"urlContext": {}}],
        "toolConfig": {"retrievalConfig": {"languageCode": "fr"},
                       "functionCallingConfig": {"mode": "ANY"}},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                            "threshold": "BLOCK_ONLY_HIGH"}],
        "generationConfig": {"speechConfig": {"languageCode": "fr-FR"}, "temperature": 0.5,
                             "mediaResolution": "MEDIA_RESOLUTION_LOW"},
        "labels": {"team": "a"}, "serviceTier": "flex", "store": True,
        "cachedContent": "cachedContents/abc",
    }
    first = decode_generate_request(orjson.dumps(caller), "m")
    body = body_of(first)
    assert body["contents"] == [
        {"role": "user", "parts": caller["contents"][0]["parts"]},
        {"role": "model", "parts": caller["contents"][1]["parts"]},
        {"role": "user", "parts": caller["contents"][2]["parts"]},
    ]
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "get_time", "behavior": "NON_BLOCKING",
                                   "responseJsonSchema": {"type": "object"}}]},
        {"googleSearch": {}}, {"urlContext": {}},
    ]
    assert body["toolConfig"] == caller["toolConfig"]
    assert body["generationConfig"] == caller["generationConfig"]
    for name in ("safetySettings", "labels", "serviceTier", "store", "cachedContent"):
        assert body[name] == caller[name]
    again = round_trip(first)
    assert again.messages == first.messages
    # The same tools, declarations first: only their indices differ.
    moved = {"tools[0].googleSearch": "tools[1].googleSearch",
             "tools[1].functionDeclarations[0].behavior":
                 "tools[0].functionDeclarations[0].behavior",
             "tools[1].functionDeclarations[0].responseJsonSchema":
                 "tools[0].functionDeclarations[0].responseJsonSchema"}
    kept = first.extensions["gemini"]["untranslated"]
    assert isinstance(kept, dict)
    expected = {moved.get(path, path): value for path, value in kept.items()}
    assert again.extensions["gemini"]["untranslated"] == expected
    # Google Search grounding and URL context are kept for a Gemini upstream, but they are
    # no untranslated fields: a canonical web search, and canonical URL context.
    assert {u.path for u in again.untranslated} == \
        set(expected) - {"tools[1].googleSearch", "tools[2].urlContext"}
    assert again.url_context
    assert again.web_search is not None and again.web_search.path == "tools[1].googleSearch"


def test_a_hint_whose_function_cannot_be_told_apart_is_reported() -> None:
    caller = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "a"}]},
                  {"functionDeclarations": [{"name": "b", "behavior": "BLOCKING"}]}],
    }
    encoded = encode_request(decode_generate_request(orjson.dumps(caller), "m"), "m",
                             stream=False)
    assert encoded.body["tools"] == [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]
    assert encoded.dropped == (
        "tools[1].functionDeclarations[0].behavior: the function it belongs to cannot be told "
        "apart in the flat list of declarations",)


def test_kept_fields_without_a_place_are_reported() -> None:
    request = ask(
        user(TextPart("hi")),
        extensions={"gemini": {"untranslated": {
            "contents[0].parts[5].videoMetadata": {"fps": 1.0},
            "contents[0].parts[0].functionResponse.willContinue": True,
            "contents[3].parts[0].executableCode": {"executableCode": {"code": "1"}},
            "generateContentRequest.labels": {"a": "b"},
        }}},
    )
    encoded = encode_request(request, "m", stream=False)
    assert encoded.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert sorted(encoded.dropped) == [
        "contents[0].parts[0].functionResponse.willContinue: the part it belongs to is no "
        "longer in the request",
        "contents[0].parts[5].videoMetadata: the part it belongs to is no longer in the request",
        "contents[3].parts[0].executableCode: the part it belongs to is no longer in the request",
        "generateContentRequest.labels: a generateContent request has no such field",
    ]


def test_the_canonical_request_wins_over_kept_fields() -> None:
    request = ask(user(TextPart("hi")), params=GenerationParams(temperature=1.0),
                  extensions={"gemini": {"untranslated": {
                      "generationConfig.temperature": 0.1, "contents": []}}})
    body = body_of(request)
    assert body["generationConfig"] == {"temperature": 1.0}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_other_dialects_extensions_are_not_read() -> None:
    request = ask(user(TextPart("hi")), extensions={"openai": {"logit_bias": {"1": 2}}})
    assert body_of(request) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_image_output_settings_go_back_to_a_gemini_upstream() -> None:
    caller = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
              "generationConfig": {"response_modalities": ["text", "IMAGE"],
                                   "image_config": {"aspect_ratio": "16:9", "image_size": "2K"}}}
    request = decode_generate_request(orjson.dumps(caller), "m")
    assert request.response_modalities == ("TEXT", "IMAGE")
    assert request.untranslated == ()
    config = body_of(request)["generationConfig"]
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    # A modality with no canonical form keeps the caller's whole list.
    audio = decode_generate_request(orjson.dumps(
        {**caller, "generationConfig": {"responseModalities": ["AUDIO", "IMAGE"]}}), "m")
    assert body_of(audio)["generationConfig"]["responseModalities"] == ["AUDIO", "IMAGE"]
