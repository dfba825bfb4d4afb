"""A caller's JSON Schema checked before any upstream sees it: the keyword table, and each
dialect's refusal naming the bad keyword in that dialect's own terms."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.dialects.anthropic.caller_request import (
    decode_messages_request,
    read_messages_document,
)
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.openai.caller_request import decode_chat_request, read_chat_document
from cometgate.dialects.schema_check import schema_fault, schema_violation
from cometgate.errors import InvalidRequest

OBJECT = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize("schema", [
    True, False, {}, OBJECT,
    {"type": ["string", "null"], "maxLength": 5.0, "minLength": 0, "pattern": "^a"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/b"}}, "required": ["a"],
     "additionalProperties": False, "$defs": {"b": {"enum": ["x", 1, None]}}},
    {"type": "array", "items": [{"type": "integer"}], "prefixItems": [{"const": 1}],
     "minItems": 1, "maxItems": 10 ** 30, "uniqueItems": True},
    {"anyOf": [{"type": "number", "minimum": -1.5, "exclusiveMaximum": 3,
                "multipleOf": 0.5}, {"type": "null"}]},
    {"type": "number", "exclusiveMinimum": True, "nullable": True},  # OpenAPI 3.0 spelling
    {"x-vendor": {"anything": "goes"}, "unknownKeyword": 5},  # unknown keywords are left alone
    {"if": {"required": ["a"]}, "then": True, "else": {"not": {}}},
    {"dependentRequired": {"a": ["b"]}, "dependentSchemas": {"a": {"required": ["c"]}}},
])
def test_well_formed_schemas_pass(schema: object) -> None:
    assert schema_fault(schema) is None


@pytest.mark.parametrize(("schema", "path", "keyword"), [
    ({"maxLength": "long"}, "maxLength", "maxLength"),
    ({"minItems": -1}, "minItems", "minItems"),
    ({"minLength": 1.5}, "minLength", "minLength"),
    ({"maxProperties": True}, "maxProperties", "maxProperties"),
    ({"minimum": "0"}, "minimum", "minimum"),
    ({"maximum": float("nan")}, "maximum", "maximum"),
    ({"multipleOf": 0}, "multipleOf", "multipleOf"),
    ({"exclusiveMinimum": "no"}, "exclusiveMinimum", "exclusiveMinimum"),
    ({"required": "a"}, "required", "required"),
    ({"required": ["a", "a"]}, "required", "required"),
    ({"required": [1]}, "required", "required"),
    ({"type": "strung"}, "type", "type"),
    ({"type": "STRING"}, "type", "type"),
    ({"type": []}, "type", "type"),
    ({"type": ["string", "string"]}, "type", "type"),
    ({"enum": []}, "enum", "enum"),
    ({"enum": "a"}, "enum", "enum"),
    ({"pattern": 5}, "pattern", "pattern"),
    ({"uniqueItems": "yes"}, "uniqueItems", "uniqueItems"),
    ({"properties": "a"}, "properties", "properties"),
    ({"properties": {"a": 5}}, "properties.a", "properties.a"),
    ({"properties": {"a": {"properties": {"b": {"maxLength": "long"}}}}},
     "properties.a.properties.b.maxLength", "maxLength"),
    ({"anyOf": []}, "anyOf", "anyOf"),
    ({"allOf": {"type": "string"}}, "allOf", "allOf"),
    ({"oneOf": [{"type": "string"}, {"minItems": "x"}]}, "oneOf.1.minItems", "minItems"),
    ({"items": {"type": "nope"}}, "items.type", "type"),
    ({"items": [{}, {"enum": []}]}, "items.1.enum", "enum"),
    ({"additionalProperties": "no"}, "additionalProperties", "additionalProperties"),
    ({"$defs": {"x": {"required": "y"}}}, "$defs.x.required", "required"),
    ({"dependentRequired": {"a": "b"}}, "dependentRequired", "dependentRequired"),
    (7, "", "schema"),
])
def test_malformed_schemas_name_the_keyword(schema: object, path: str, keyword: str) -> None:
    fault = schema_fault(schema)
    assert fault is not None and (fault.path, fault.keyword) == (path, keyword)
    assert fault.describe().startswith(f"Invalid JSON Schema: '{keyword}'")


def test_the_sentence_places_the_keyword_and_shows_a_bounded_value() -> None:
    fault = schema_fault({"properties": {"a": {"maxLength": "long"}}})
    assert fault is not None and fault.describe() == (
        "Invalid JSON Schema: 'maxLength' at 'properties.a' must be a non-negative integer, "
        'got "long".')
    long = schema_fault({"format": ["x"] * 10000})
    assert long is not None and long.describe().endswith("got an array.")
    assert schema_violation({"required": "a"}, "field") == (
        "field.required",
        "Invalid JSON Schema: 'required' must be an array of distinct property names "
        '(strings), got "a".')


def test_a_deep_schema_is_walked_without_recursion() -> None:
    schema: dict[str, Any] = {"maxLength": "long"}
    for _ in range(5000):
        schema = {"items": schema}
    fault = schema_fault(schema)
    assert fault is not None and fault.path == "items." * 5000 + "maxLength"


# --- each dialect refuses, naming the keyword in its own terms --------------------------------

BAD = {"type": "object", "properties": {"a": {"type": "string", "maxLength": "long"}}}
SENTENCE = ("Invalid JSON Schema: 'maxLength' at 'properties.a' must be a non-negative "
            'integer, got "long".')


def gemini_refusal(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode_generate_request(orjson.dumps(body), "m")
    return caught.value


def test_gemini_response_json_schema() -> None:
    error = gemini_refusal({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {
        "responseMimeType": "application/json", "responseJsonSchema": BAD}})
    field = "generation_config.response_json_schema.properties.a.maxLength"
    assert error.message == f"* GenerateContentRequest.{field}: {SENTENCE}"
    assert list(error.violations) == [field]


def test_gemini_function_parameters_json_schema() -> None:
    error = gemini_refusal({"contents": [{"parts": [{"text": "hi"}]}], "tools": [
        {"functionDeclarations": [{"name": "f", "parametersJsonSchema": BAD}]}]})
    field = "tools[0].function_declarations[0].parameters_json_schema.properties.a.maxLength"
    assert list(error.violations) == [field]


def openai_refusal(**fields: Any) -> InvalidRequest:
    document = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(InvalidRequest) as caught:
        decode_chat_request(read_chat_document(orjson.dumps(document)))
    return caught.value


def test_openai_response_format_and_tool_parameters() -> None:
    error = openai_refusal(response_format={"type": "json_schema",
                                            "json_schema": {"name": "x", "schema": BAD}})
    assert error.message == SENTENCE
    assert list(error.violations) == ["response_format.json_schema.schema.properties.a.maxLength"]
    error = openai_refusal(tools=[{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "required": "a"}}}])
    assert list(error.violations) == ["tools[0].function.parameters.required"]


def anthropic_refusal(**fields: Any) -> InvalidRequest:
    document = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}],
                **fields}
    with pytest.raises(InvalidRequest) as caught:
        decode_messages_request(read_messages_document(orjson.dumps(document)))
    return caught.value


def test_anthropic_tool_input_schema_and_output_format() -> None:
    error = anthropic_refusal(tools=[{"name": "f", "input_schema": BAD}])
    path = next(iter(error.violations))
    assert path.endswith("input_schema.properties.a.maxLength")
    assert error.message == f"{path}: {SENTENCE}"
    error = anthropic_refusal(output_format={"type": "json_schema", "schema": BAD})
    assert list(error.violations) == ["output_format.schema.properties.a.maxLength"]
