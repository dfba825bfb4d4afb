"""generateContent through the app: the exact response shape, and what the upstream received."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.api.bodies import GENERATE, JSON_TYPE, PNG_BASE64, SMOL, text_body, with_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply


async def test_response_has_gemini_shape_and_headers(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text="Hi there.", prompt_tokens=9, completion_tokens=4))
    response = await client.post(GENERATE, json=text_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    assert len(response.headers["x-request-id"]) >= 16
    body = response.json()
    assert list(body) == [
        "candidates", "usageMetadata", "modelVersion", "responseId", "createTime"
    ]
    assert body["candidates"] == [
        {
            "content": {"parts": [{"text": "Hi there."}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == 9
    assert usage["candidatesTokenCount"] == 4
    assert usage["totalTokenCount"] == 13
    assert body["modelVersion"] == SMOL
    assert isinstance(body["responseId"], str) and body["responseId"]
    created = body["createTime"]
    assert created.endswith("Z")
    assert datetime.fromisoformat(created.replace("Z", "+00:00")).tzinfo is not None


async def test_response_ids_and_request_ids_differ_per_call(client: httpx.AsyncClient) -> None:
    first = await client.post(GENERATE, json=text_body())
    second = await client.post(GENERATE, json=text_body())
    assert first.json()["responseId"] != second.json()["responseId"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_upstream_receives_model_defaults_when_caller_sets_no_sampling(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    await client.post(GENERATE, json=text_body("Hi"))
    (sent,) = upstream.requests
    assert sent["model"] == SMOL
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.2, 0.95, 40)
    for absent in ("max_tokens", "stop", "seed", "n", "response_format", "tools", "stream"):
        assert absent not in sent


async def test_upstream_receives_callers_generation_params(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    config = {"temperature": 0.7, "topP": 0.5, "topK": 3, "maxOutputTokens": 50,
              "stopSequences": ["END", "STOP"], "seed": 42, "candidateCount": 2}
    response = await client.post(GENERATE, json=with_config(**config))
    assert response.status_code == 200
    (sent,) = upstream.requests
    assert sent["temperature"] == 0.7 and sent["top_p"] == 0.5 and sent["top_k"] == 3
    assert sent["max_tokens"] == 50
    assert sent["stop"] == ["END", "STOP"]
    assert sent["seed"] == 42
    assert sent["n"] == 2


async def test_snake_case_generation_params_are_read_too(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    # google-genai mixes spellings in one body.
    body = {**text_body(), "generation_config": {"max_output_tokens": 12, "top_k": 20.0}}
    assert (await client.post(GENERATE, json=body)).status_code == 200
    assert upstream.requests[0]["max_tokens"] == 12
    assert upstream.requests[0]["top_k"] == 20


async def test_system_instruction_and_multi_turn_history(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "How are you?"}]},
        ],
    }
    assert (await client.post(GENERATE, json=body)).status_code == 200
    assert upstream.requests[0]["messages"] == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you?"},
    ]


async def test_json_output_without_schema(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    await client.post(GENERATE, json=with_config(responseMimeType="application/json"))
    assert upstream.requests[0]["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    "schema_field, schema",
    [
        ("responseSchema", {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}),
        ("responseJsonSchema", {"type": "object", "properties": {"n": {"type": "integer"}}}),
        ("response_json_schema", {"type": "object", "properties": {"n": {"type": "integer"}}}),
    ],
)
async def test_json_output_with_schema(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, schema_field: str,
    schema: dict[str, Any],
) -> None:
    config = {"responseMimeType": "application/json", schema_field: schema}
    assert (await client.post(GENERATE, json=with_config(**config))).status_code == 200
    response_format = upstream.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    sent_schema = response_format["json_schema"]["schema"]
    assert sent_schema["type"] == "object"
    assert sent_schema["properties"] == {"n": {"type": "integer"}}


async def test_enum_output_is_sent_as_string_enum_and_answered_bare(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text='"positive"'))
    config = {"responseMimeType": "text/x.enum",
              "responseSchema": {"type": "STRING", "enum": ["positive", "negative"]}}
    response = await client.post(GENERATE, json=with_config(**config))
    assert response.status_code == 200
    schema = upstream.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema == {"type": "string", "enum": ["positive", "negative"]}
    assert response.json()["candidates"][0]["content"]["parts"] == [{"text": "positive"}]


async def test_length_finish_becomes_max_tokens(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(finish_reason="length"))
    response = await client.post(GENERATE, json=with_config(maxOutputTokens=5))
    assert response.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"


async def test_image_is_accepted_on_a_model_that_takes_images(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {"contents": [{"parts": [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
    ]}]}
    response = await client.post("/v1beta/models/level-thinker:generateContent", json=body)
    assert response.status_code == 200
    (sent,) = upstream.requests
    assert sent["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
    ]}]
    assert base64.b64decode(PNG_BASE64) == b"\x89PNG\r\n\x1a\n"


async def test_droppable_fields_are_named_in_the_dropped_header(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {**text_body(), "labels": {"team": "a"},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                "threshold": "BLOCK_NONE"}]}
    response = await client.post(GENERATE, json=body)
    assert response.status_code == 200
    assert set(response.headers["x-cometgate-dropped"].split(",")) == {"safetySettings", "labels"}
    assert "labels" not in upstream.requests[0]


async def test_nothing_dropped_means_no_dropped_header(client: httpx.AsyncClient) -> None:
    response = await client.post(GENERATE, json=text_body())
    assert "x-cometgate-dropped" not in response.headers


async def test_non_ascii_text_reaches_the_upstream_and_the_caller_intact(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text="☃ snow \u2028 line"))
    response = await client.post(GENERATE, json=text_body("naïve ☃"))
    assert upstream.requests[0]["messages"][0]["content"] == "naïve ☃"
    assert orjson.loads(response.content)["candidates"][0]["content"]["parts"][0]["text"] == (
        "☃ snow \u2028 line"
    )
