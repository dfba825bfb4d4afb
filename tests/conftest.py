"""Shared fixtures: settings on a temporary data directory, an app wired to an in-process fake
OpenAI-compatible upstream, and an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.settings import OpenAIProviderSettings, Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.fakes.openai_upstream import FakeOpenAIUpstream

FAKE_MODELS_YAML = """
# API tests look at one attempt at a time; failover has tests of its own.
routing: {retries: 0}
server: {metrics: open}  # the tests read the counters without the admin key
providers:
  fake: {kind: openai, base_url: "http://fake-upstream/v1", accepts_top_k: true,
         tokenize_endpoint: true, supports_reasoning: true}
models:
  smollm2-135m-instruct:
    provider: fake
    display_name: SmolLM2 135M Instruct
    input_token_limit: 8192
    output_token_limit: 8192
    temperature: 0.2
    max_temperature: 2.0
    top_p: 0.95
    top_k: 40
  budget-thinker:
    provider: fake
    input_token_limit: 1000
    output_token_limit: 500
    thinking: {style: budget, budget_min: 128, budget_max: 24576, can_disable: false}
  level-thinker:
    provider: fake
    input_token_limit: 1000
    output_token_limit: 500
    input_mime_types: [text/plain, image/png]
    thinking: {style: levels, levels: [LOW, HIGH]}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "cometgate.yaml"
    config.write_text(FAKE_MODELS_YAML, encoding="utf-8")
    return load_settings(config, data_dir=tmp_path / "data", env={"HOME": str(tmp_path)})


@pytest.fixture
def upstream() -> FakeOpenAIUpstream:
    return FakeOpenAIUpstream()


@pytest.fixture
def fake_provider(settings: Settings, upstream: FakeOpenAIUpstream) -> Iterator[Provider]:
    """The configured "fake" provider, its HTTP client wired to the in-process upstream."""
    spec = settings.provider("fake")
    assert isinstance(spec, OpenAIProviderSettings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app))
    yield http_provider(
        "fake", base_url=spec.base_url, options=openai_options(spec), timeouts=spec.timeouts,
        client=client,
    )


@pytest.fixture
async def api_key(settings: Settings) -> str:
    database = await open_database(settings.database_url)
    try:
        _, key = await KeyRepository(database).create("tests")
    finally:
        await database.aclose()
    return key


@pytest.fixture
async def client(
    settings: Settings, fake_provider: Provider, api_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, providers={"fake": fake_provider})
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers={"x-goog-api-key": api_key}
        ) as http:
            yield http
