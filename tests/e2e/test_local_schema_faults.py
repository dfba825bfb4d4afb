"""One key's malformed schemas cannot take the local model away from another key: each is a
400 in the caller's dialect naming the bad keyword, nothing counts against the model's circuit,
and another key's ordinary call right after is answered (live gateway, real model)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import MODEL, LiveGateway, create_key

pytestmark = pytest.mark.model

ASK = [{"role": "user", "parts": [{"text": "Say yes."}]}]
# (the malformed response schema, the keyword path the refusal must name)
MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"type": "object", "properties": {"a": {"type": "string", "maxLength": "long"}}},
     "properties.a.maxLength"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"}, "required"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": -1}, "minItems"),
    ({"type": "object", "properties": "a"}, "properties"),
    ({"type": "strung"}, "type"),
    ({"anyOf": []}, "anyOf"),
]


def generate(gateway: LiveGateway) -> str:
    return f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent"


def test_malformed_schemas_are_the_callers_400_and_never_open_the_circuit(
    gateway: LiveGateway,
) -> None:
    other_key = create_key(gateway.data_dir, "schema-bystander")
    with httpx.Client(timeout=120) as http:
        for schema, keyword in MALFORMED:
            body = {"contents": ASK, "generationConfig": {
                "responseMimeType": "application/json", "responseJsonSchema": schema,
                "maxOutputTokens": 8}}
            refused = http.post(generate(gateway), json=body,
                                headers={"x-goog-api-key": gateway.key})
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
            field = f"generation_config.response_json_schema.{keyword}"
            assert error["message"].startswith(f"* GenerateContentRequest.{field}: "), error
            assert f"'{keyword.rsplit('.', 1)[-1]}'" in error["message"]
            violation = error["details"][0]["fieldViolations"][0]
            assert violation["field"] == field
        # The seventh call, another key's ordinary one, reaches the model at once.
        answered = http.post(generate(gateway), headers={"x-goog-api-key": other_key},
                             json={"contents": ASK, "generationConfig": {"maxOutputTokens": 4}})
        assert answered.status_code == 200, answered.text
        assert answered.json()["candidates"][0]["content"]["parts"][0]["text"]


def test_an_openai_caller_hears_the_bad_keyword_as_a_param(gateway: LiveGateway) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": "long"}}}
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "schema": schema}}}
    with httpx.Client(timeout=120) as http:
        refused = http.post(f"{gateway.base_url}/v1/chat/completions", json=body,
                            headers={"authorization": f"Bearer {gateway.key}"})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "response_format.json_schema.schema.properties.a.maxLength"
        assert error["message"] == (
            "Invalid JSON Schema: 'maxLength' at 'properties.a' must be a non-negative integer, "
            'got "long".')
        tools = [{"type": "function", "function": {
            "name": "f", "parameters": {"type": "object", "required": "a"}}}]
        refused = http.post(f"{gateway.base_url}/v1/chat/completions",
                            json={**body, "response_format": None, "tools": tools},
                            headers={"authorization": f"Bearer {gateway.key}"})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "tools[0].function.parameters.required"
