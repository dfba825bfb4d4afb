"""Token counts on every counting route for every upstream kind, against the fakes' own counts.

Every fake counts one token per word of the texts it received (contents, system, tool names
and descriptions), so a count proves what arrived. The expected numbers below are counted by
hand from the caller's request:

    SYSTEM      "Answer in one short sentence"          5
    QUESTION    "What is the weather in Lima today"     7
    WEATHER     get_weather + "Current temperature in a city"   1 + 5

Routes: Gemini `:countTokens` (both forms) and Anthropic `/v1/messages/count_tokens`. Kinds:
gemini, anthropic, openai with `tokenize_endpoint` (openai-counted) and without (openai-text).
The local model counts through the same tokenize call (tests/e2e, marked `model`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.contract.conftest import (
    SECRETS,
    UPSTREAM_MODEL,
    Fakes,
    Gateway,
    contract_config,
    model_block,
    provider_block,
    running_gateway,
    settings_for,
)
from tests.contract.scenarios import received, request_count
from tests.fakes import anthropic_upstream as anthropic

SYSTEM = "Answer in one short sentence"
QUESTION = "What is the weather in Lima today"
WEATHER = {"name": "get_weather", "description": "Current temperature in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
QUESTION_WORDS, ALL_WORDS = 7, 18

# model → the fake that counts for it
COUNTING = {"gemini-text": "gemini", "anthropic-text": "anthropic", "openai-counted": "openai"}
NO_COUNT = ("Token counting is not available for openai-text: provider openai gives no exact "
            "count (it declares no tokenize endpoint), and the gateway does not estimate one. "
            "An operator can enable it with `tokenize_endpoint: true` on provider openai, when "
            "its server offers vLLM's POST /tokenize.")


@pytest.fixture
async def gateway(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The contract gateway, plus `openai-counted` on an OpenAI provider with /tokenize."""
    config = contract_config(fakes)
    config["providers"]["openai-tokenize"] = provider_block(
        "openai", fakes.urls["openai"], ["OPENAI_KEY"], tokenize_endpoint=True)
    config["models"]["openai-counted"] = model_block([("openai-tokenize", "gpt-up")])
    async with running_gateway(settings_for(tmp_path, config, SECRETS)) as running:
        yield running


def gemini_contents() -> list[dict[str, Any]]:
    return [{"role": "user", "parts": [{"text": QUESTION}]}]


def anthropic_body(model: str, **extra: Any) -> dict[str, Any]:
    tool = {"name": WEATHER["name"], "description": WEATHER["description"],
            "input_schema": WEATHER["parameters"]}
    return {"model": model, "system": SYSTEM, "tools": [tool],
            "messages": [{"role": "user", "content": QUESTION}], **extra}


# --- Gemini callers -------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(COUNTING))
async def test_gemini_contents_are_counted_by_every_counting_upstream(
    gateway: Gateway, fakes: Fakes, model: str
) -> None:
    body = orjson.dumps({"contents": gemini_contents()})
    response = await gateway.http.post(f"/v1beta/models/{model}:countTokens", content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"totalTokens": QUESTION_WORDS, "promptTokensDetails": [
        {"modality": "TEXT", "tokenCount": QUESTION_WORDS}]}
    kind = COUNTING[model]
    if kind == "gemini":  # a Gemini caller's own request, forwarded byte for byte
        seen = fakes.gemini.requests[-1]
        assert (seen.path, seen.body) == ("/v1beta/models/gemini-up:countTokens", body)
    elif kind == "anthropic":
        assert received(kind, fakes) == {"model": "claude-up", "messages": [
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]}
        assert fakes.anthropic.headers[-1]["anthropic-version"] == "2023-06-01"
    else:
        assert received(kind, fakes) == {
            "model": "gpt-up", "messages": [{"role": "user", "content": QUESTION}]}


@pytest.mark.parametrize("model", list(COUNTING))
async def test_a_whole_generate_request_counts_its_system_and_tools(
    gateway: Gateway, fakes: Fakes, model: str
) -> None:
    """Sampling settings ride along in the inner request: Anthropic's count refuses them, so
    they must not reach it — and a temperature Anthropic could not take refuses no count."""
    inner = {"model": f"models/{model}", "contents": gemini_contents(),
             "systemInstruction": {"parts": [{"text": SYSTEM}]},
             "tools": [{"functionDeclarations": [WEATHER]}],
             "generationConfig": {"temperature": 1.5, "maxOutputTokens": 64}}
    response = await gateway.http.post(f"/v1beta/models/{model}:countTokens",
                                       json={"generateContentRequest": inner})
    assert response.status_code == 200, response.text
    assert response.json()["totalTokens"] == ALL_WORDS
    if COUNTING[model] == "anthropic":
        sent = received("anthropic", fakes)
        assert sorted(sent) == ["messages", "model", "system", "tool_choice", "tools"]
        assert sent["system"] == [{"type": "text", "text": SYSTEM}]
        assert sent["tools"][0]["name"] == "get_weather"


async def test_gemini_counts_of_an_image_claim_no_modality(
    gateway: Gateway, fakes: Fakes
) -> None:
    """Anthropic's count does not say how many of its tokens the image took."""
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    body = {"contents": [{"role": "user", "parts": [{"text": QUESTION}, image]}]}
    response = await gateway.http.post("/v1beta/models/anthropic-text:countTokens", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"totalTokens": QUESTION_WORDS}
    assert received("anthropic", fakes)["messages"][0]["content"][1]["type"] == "image"


async def test_gemini_refusal_where_no_exact_count_exists(
    gateway: Gateway, fakes: Fakes
) -> None:
    before = request_count("openai", fakes)
    response = await gateway.http.post("/v1beta/models/openai-text:countTokens",
                                       json={"contents": gemini_contents()})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": 400, "message": NO_COUNT,
                                         "status": "INVALID_ARGUMENT"}}
    assert request_count("openai", fakes) == before


# --- Anthropic callers ----------------------------------------------------------------------


async def test_anthropic_count_on_anthropic_is_forwarded(gateway: Gateway, fakes: Fakes) -> None:
    """The body with only the model rewritten (fields the gateway does not know included),
    the caller's API version, its beta flags and its `beta` query flag kept; the caller's
    other query parameters and its key stay here."""
    body = anthropic_body("anthropic-text", context_management={"edits": [
        {"type": "clear_tool_uses_20250919"}]})
    headers = {"anthropic-version": "2024-01-01", "anthropic-beta": "context-management-2025-06-27"}
    response = await gateway.http.post("/v1/messages/count_tokens?beta=true&key=cg-secret",
                                       json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": ALL_WORDS}
    assert received("anthropic", fakes) == {**body, "model": UPSTREAM_MODEL["anthropic"]}
    seen = fakes.anthropic.headers[-1]
    assert (seen["anthropic-version"], seen["anthropic-beta"]) == (
        "2024-01-01", "context-management-2025-06-27")
    assert seen["x-api-key"] == SECRETS["ANTHROPIC_KEY"]
    assert fakes.anthropic.queries[-1] == "beta=true"


async def test_anthropic_count_without_a_version_gets_the_configured_one(
    gateway: Gateway, fakes: Fakes
) -> None:
    response = await gateway.http.post("/v1/messages/count_tokens",
                                       json=anthropic_body("anthropic-text"))
    assert response.status_code == 200, response.text
    assert fakes.anthropic.headers[-1]["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in fakes.anthropic.headers[-1]
    assert fakes.anthropic.queries[-1] == ""


async def test_anthropic_upstream_refusal_of_a_count_reaches_the_caller_as_written(
    gateway: Gateway, fakes: Fakes
) -> None:
    fakes.anthropic.replies.append(anthropic.Reply(status=400))
    response = await gateway.http.post("/v1/messages/count_tokens",
                                       json=anthropic_body("anthropic-text"))
    assert response.status_code == 400
    assert response.json() == {"type": "error", "request_id": "req_fake0001", "error": {
        "type": "invalid_request_error", "message": "fake failure 400"}}


@pytest.mark.parametrize("model", ["gemini-text", "openai-counted"])
async def test_anthropic_count_is_translated_for_other_upstreams(
    gateway: Gateway, fakes: Fakes, model: str
) -> None:
    response = await gateway.http.post("/v1/messages/count_tokens", json=anthropic_body(model))
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": ALL_WORDS}
    if COUNTING[model] == "gemini":  # as a whole generate request, so system and tools count
        seen = fakes.gemini.requests[-1]
        assert seen.path == "/v1beta/models/gemini-up:countTokens"
        inner = orjson.loads(seen.body)["generateContentRequest"]
        assert inner["model"] == "models/gemini-up"
        assert inner["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
        assert inner["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


async def test_anthropic_refusal_where_no_exact_count_exists(
    gateway: Gateway, fakes: Fakes
) -> None:
    before = request_count("openai", fakes)
    response = await gateway.http.post("/v1/messages/count_tokens",
                                       json=anthropic_body("openai-text"))
    assert response.status_code == 400
    body = response.json()
    assert body == {"type": "error", "request_id": body["request_id"],
                    "error": {"type": "invalid_request_error", "message": NO_COUNT}}
    assert request_count("openai", fakes) == before


async def test_counts_are_not_generations(gateway: Gateway) -> None:
    for model in COUNTING:
        anthropic_count = await gateway.http.post("/v1/messages/count_tokens",
                                                  json=anthropic_body(model))
        gemini_count = await gateway.http.post(f"/v1beta/models/{model}:countTokens",
                                               json={"contents": gemini_contents()})
        assert (anthropic_count.status_code, gemini_count.status_code) == (200, 200)
        assert await gateway.tokens(model) == {}
