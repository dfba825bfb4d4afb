"""google-genai's async client (`client.aio`) against the live gateway, and concurrency: several
streams at once, and the cheap routes answering while a long generation runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from google import genai
from google.genai import types

from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = pytest.mark.model

CONFIG = types.GenerateContentConfig(temperature=0.0, seed=7, max_output_tokens=12)


@pytest.fixture
async def client(gateway: LiveGateway) -> AsyncIterator[genai.client.AsyncClient]:
    sdk = genai.Client(api_key=gateway.key, http_options={"api_version": "v1beta",
                                                         "base_url": gateway.base_url})
    async with sdk.aio as aio:
        yield aio
    sdk.close()


async def test_generate(client: genai.client.AsyncClient) -> None:
    response = await client.models.generate_content(
        model=MODEL, contents="Explain how AI works in a few words", config=CONFIG)
    assert response.text and response.text.strip()
    usage = response.usage_metadata
    assert usage and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count


async def collect_stream(client: genai.client.AsyncClient, prompt: str) -> list[
        types.GenerateContentResponse]:
    stream = await client.models.generate_content_stream(model=MODEL, contents=prompt,
                                                         config=CONFIG)
    return [chunk async for chunk in stream]


async def test_stream(client: genai.client.AsyncClient) -> None:
    chunks = await collect_stream(client, "Write a haiku about stars")
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks).strip()
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason in {
        types.FinishReason.STOP, types.FinishReason.MAX_TOKENS}
    assert last.usage_metadata and last.usage_metadata.candidates_token_count


async def test_count_tokens_matches_generation(client: genai.client.AsyncClient) -> None:
    contents = "Write a haiku about stars"
    counted = await client.models.count_tokens(model=MODEL, contents=contents)
    generated = await client.models.generate_content(model=MODEL, contents=contents,
                                                     config=CONFIG)
    assert generated.usage_metadata is not None
    assert counted.total_tokens == generated.usage_metadata.prompt_token_count


async def test_models_list(client: genai.client.AsyncClient) -> None:
    names = [model.name async for model in await client.models.list()]
    assert names == [f"models/{MODEL}", "models/all-minilm-l6-v2"]


async def test_four_concurrent_streams_all_complete(client: genai.client.AsyncClient) -> None:
    prompts = ["Name a colour.", "Name a fruit.", "Name an animal.", "Name a city."]
    results = await asyncio.gather(*(collect_stream(client, p) for p in prompts))
    for chunks in results:
        assert chunks and "".join(c.text or "" for c in chunks).strip()
        last = chunks[-1]
        assert last.candidates and last.candidates[0].finish_reason in {
            types.FinishReason.STOP, types.FinishReason.MAX_TOKENS}


async def test_cheap_routes_answer_during_a_long_generation(gateway: LiveGateway) -> None:
    headers = {"x-goog-api-key": gateway.key}
    body = {"contents": [{"parts": [{"text": "Write a long story about a lighthouse."}]}],
            "generationConfig": {"maxOutputTokens": 120, "temperature": 0, "seed": 1}}
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        async with http.stream("POST", url, json=body) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("data: ")  # generation is under way
            health = await http.get(f"{gateway.base_url}/healthz")
            models = await http.get(f"{gateway.base_url}/v1beta/models")
            # Both answered while the stream was still open: the rest of it, with the finish
            # reason, is read only afterwards.
            rest = [line async for line in lines]
        assert health.status_code == 200
        assert models.status_code == 200
        assert models.json()["models"][0]["name"] == f"models/{MODEL}"
        assert rest and any('"finishReason"' in line for line in rest)
