"""The proto3-JSON reader: both spellings, free-form fields, scalars, and Google's messages."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.dialects.gemini.protojson import decode_base64, parse, to_json
from cometgate.dialects.gemini.schema import GENERATE_CONTENT_REQUEST, message_type
from cometgate.errors import InvalidRequest


def _parse(data: Any) -> dict[str, Any]:
    return parse(GENERATE_CONTENT_REQUEST, data)


def _error(data: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        _parse(data)
    return caught.value


def test_both_spellings_at_several_depths_normalise_to_proto_names() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "x"}]},
        "generationConfig": {
            "top_k": 3,
            "thinkingConfig": {"thinking_budget": 10, "includeThoughts": True},
        },
        "contents": [{"parts": [{"inlineData": {"mime_type": "a/b", "data": "AA=="}}]}],
    }
    got = _parse(body)
    assert got["system_instruction"] == {"parts": [{"text": "x"}]}
    assert got["generation_config"] == {
        "top_k": 3,
        "thinking_config": {"thinking_budget": 10, "include_thoughts": True},
    }
    assert got["contents"][0]["parts"][0]["inline_data"] == {"mime_type": "a/b", "data": b"\0"}


def test_free_form_keys_are_untouched() -> None:
    args = {"mime_type": "x", "snake_key": {"inner_key": 1}, "camelKey": [1, {"a_b": 2}]}
    body = {
        "contents": [
            {"parts": [{"functionCall": {"name": "f", "args": args}}]},
            {"parts": [{"function_response": {"name": "f", "response": {"file_uri": 1}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": args}]}],
    }
    got = _parse(body)
    assert got["contents"][0]["parts"][0]["function_call"]["args"] == args
    assert got["contents"][1]["parts"][0]["function_response"]["response"] == {"file_uri": 1}
    assert got["tools"][0]["function_declarations"][0]["parameters_json_schema"] == args


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("c2ln-_8=", b"sig\xfb\xff"),
        ("c2ln+/8=", b"sig\xfb\xff"),
        ("c2ln-_8", b"sig\xfb\xff"),
        ("c2lnLWJ5dGVz", b"sig-bytes"),
        ("", b""),
    ],
)
def test_base64_both_alphabets_padding_optional(text: str, expected: bytes) -> None:
    assert decode_base64(text) == expected


@pytest.mark.parametrize("text", ["a", "!!!!", "ab=c"])
def test_bad_base64_is_refused(text: str) -> None:
    err = _error({"contents": [{"parts": [{"inlineData": {"mimeType": "a", "data": text}}]}]})
    assert err.message.startswith(
        "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), "
    )


def test_integral_floats_and_int64_strings_are_integers() -> None:
    got = _parse(
        {
            "generationConfig": {
                "topK": 20.0,
                "responseSchema": {"type": "ARRAY", "minItems": "2", "maxItems": 5.0},
            }
        }
    )
    assert got["generation_config"]["top_k"] == 20
    assert isinstance(got["generation_config"]["top_k"], int)
    assert got["generation_config"]["response_schema"]["min_items"] == 2
    assert got["generation_config"]["response_schema"]["max_items"] == 5


def test_enum_integers_and_lowercase_schema_types() -> None:
    got = _parse(
        {
            "safetySettings": [{"category": 8, "threshold": "BLOCK_NONE"}],
            "generationConfig": {"responseSchema": {"type": "object"}},
        }
    )
    assert got["safety_settings"][0]["category"] == "HARM_CATEGORY_HATE_SPEECH"
    assert got["generation_config"]["response_schema"]["type"] == "OBJECT"


def test_null_means_unset_and_a_lone_value_fills_a_list() -> None:
    got = _parse({"contents": {"parts": {"text": "hi"}}, "tools": None})
    assert got == {"contents": [{"parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        (
            {"generationConfig": {"effortLevel": 1}},
            'Invalid JSON payload received. Unknown name "effortLevel" at '
            "'generation_config': Cannot find field.",
            "generation_config",
        ),
        (
            {"foo": 1},
            'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
            "",
        ),
        (
            {"generationConfig": {"topK": 20.5}},
            "Invalid value at 'generation_config.top_k' (TYPE_INT32), 20.5",
            "generation_config.top_k",
        ),
        (
            {"generationConfig": {"thinkingConfig": {"thinkingBudget": 19660.800000000003}}},
            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
            "19660.800000000003",
            "generation_config.thinking_config.thinking_budget",
        ),
        (
            {"safetySettings": [{"category": "X", "threshold": "OFF"}]},
            "Invalid value at 'safety_settings[0].category' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), "X"',
            "safety_settings[0].category",
        ),
        (
            {"systemInstruction": "be brief"},
            "Invalid value at 'system_instruction' "
            '(type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "be brief"',
            "system_instruction",
        ),
        (
            {"contents": [{"parts": [{"text": 5}]}]},
            "Invalid value at 'contents[0].parts[0].text' (TYPE_STRING), 5",
            "contents[0].parts[0].text",
        ),
        (
            {"generationConfig": {"temperature": "hot"}},
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
            "generation_config.temperature",
        ),
        (
            {"generationConfig": {"seed": 2**31}},
            f"Invalid value at 'generation_config.seed' (TYPE_INT32), {2**31}",
            "generation_config.seed",
        ),
        (
            {"store": "yes"},
            "Invalid value at 'store' (TYPE_BOOL), \"yes\"",
            "store",
        ),
        (
            {"systemInstruction": {"role": ["user"]}},
            "Invalid JSON payload received. Unknown name \"role\" at 'system_instruction': "
            "Proto field is not repeating, cannot start list.",
            "system_instruction",
        ),
        (
            {"contents": [{"parts": [{"text": "a", "inlineData": {"data": ""}}]}]},
            'Invalid JSON payload received. Unknown name "inlineData" at '
            "'contents[0].parts[0]': oneof field 'data' is already set. Cannot set 'inlineData'",
            "contents[0].parts[0]",
        ),
        (
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {
                                    "type": "OBJECT",
                                    "properties": {
                                        "a": {"type": "STRING"},
                                        "b": {"additionalProperties": False},
                                    },
                                },
                            }
                        ]
                    }
                ]
            },
            'Invalid JSON payload received. Unknown name "additionalProperties" at '
            "'tools[0].function_declarations[0].parameters.properties[1].value': "
            "Cannot find field.",
            "tools[0].function_declarations[0].parameters.properties[1].value",
        ),
    ],
)
def test_refusals_use_googles_messages(body: Any, message: str, field: str) -> None:
    err = _error(body)
    assert err.message == message
    assert err.violations == {field: message}
    assert err.http_status == 400


def test_several_problems_are_joined_with_newlines() -> None:
    err = _error({"a": 1, "generationConfig": {"b": 2, "topK": 1.5}})
    assert err.message.split("\n") == [
        'Invalid JSON payload received. Unknown name "a": Cannot find field.',
        "Invalid JSON payload received. Unknown name \"b\" at 'generation_config': "
        "Cannot find field.",
        "Invalid value at 'generation_config.top_k' (TYPE_INT32), 1.5",
    ]


def test_the_same_field_in_both_spellings_is_refused() -> None:
    err = _error({"generationConfig": {"topK": 1, "top_k": 2}})
    assert "top_k" in err.message and "more than once" in err.message


def test_to_json_renders_canonical_camel_case() -> None:
    part = parse(message_type("Part"), {"inline_data": {"mime_type": "a", "data": "c2ln-_8"}})
    assert to_json(message_type("Part"), part) == {
        "inlineData": {"mimeType": "a", "data": "c2ln+/8="}
    }
