"""Embeddings from Gemini and OpenAI-compatible upstreams, through the app, in both caller
dialects: a Gemini caller reaching an OpenAI-compatible upstream and an OpenAI caller reaching
Gemini, the gateway's credentials upstream, the upstream's vectors unchanged, one record each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.unit.embeddings.embedding_upstreams import vector_for
from tests.unit.embeddings.test_http_embedders import Upstreams, upstreams

__all__ = ["upstreams"]  # the fixture, served on a loopback port

CONFIG = """
routing: {{retries: 0}}
providers:
  google: {{kind: gemini, base_url: "{url}", api_key: "env:CG_TEST_GOOGLE"}}
  vllm: {{kind: openai, base_url: "{url}/v1", api_key: "env:CG_TEST_VLLM"}}
models:
  g-embed: {{task: embed, provider: google, upstream_model: text-embedding-up,
             input_token_limit: 2048}}
  o-embed: {{task: embed, provider: vllm, upstream_model: bge-up, input_token_limit: 512}}
"""


class Gateway:
    def __init__(self, http: httpx.AsyncClient, key: str, app: Starlette,
                 settings: Settings) -> None:
        self.http, self.key, self.app, self.settings = http, key, app, settings

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


@pytest.fixture
async def gateway(upstreams: Upstreams, tmp_path: Path) -> AsyncIterator[Gateway]:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url=upstreams.url), encoding="utf-8")
    env = {"HOME": str(tmp_path), "CG_TEST_GOOGLE": "g-secret", "CG_TEST_VLLM": "v-secret"}
    settings = load_settings(path, data_dir=tmp_path / "data", env=env)
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create("embeddings")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            yield Gateway(http, key, app, settings)


async def test_an_openai_caller_reaches_a_gemini_upstream(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    response = await gateway.http.post(
        "/v1/embeddings", headers={"authorization": f"Bearer {gateway.key}"},
        json={"model": "g-embed", "input": ["alpha", "be"]})
    assert response.status_code == 200, response.text
    assert [d["embedding"] for d in response.json()["data"]] == [
        vector_for("alpha"), vector_for("be")]
    [seen] = upstreams.fake.seen
    assert seen.path == "/v1beta/models/text-embedding-up:batchEmbedContents"
    assert seen.headers["x-goog-api-key"] == "g-secret"
    [record] = await gateway.records()
    assert (record.dialect, record.provider, record.upstream_model) == (
        "openai", "google", "text-embedding-up")
    assert record.prompt_tokens > 0 and record.output_tokens == 0


async def test_a_gemini_caller_reaches_an_openai_compatible_upstream(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    response = await gateway.http.post(
        "/v1beta/models/o-embed:embedContent", headers={"x-goog-api-key": gateway.key},
        json={"content": {"parts": [{"text": "gamma"}]}})
    assert response.status_code == 200, response.text
    assert response.json() == {"embedding": {"values": vector_for("gamma")}}
    [seen] = upstreams.fake.seen
    assert seen.path == "/v1/embeddings" and seen.body["model"] == "bge-up"
    assert seen.headers["authorization"] == "Bearer v-secret"
    [record] = await gateway.records()
    assert (record.dialect, record.provider, record.status) == ("gemini", "vllm", 200)
