"""A gateway whose models reach the three fake upstreams (OpenAI, Anthropic, Gemini) over real
loopback sockets, configured only through YAML, driven through its Gemini API in process.

For each provider kind K the configuration holds:
    providers  K (the fake), K-slow (the fake with a 0.3 s first-byte timeout), K-second (the
               fake again, as another provider),
               K-reset (a server that resets every connection)
    models     K-text (text + image/png), K-think (budget thinking), K-slow, K-reset,
               K-reset-failover (K-reset first, then K),
               K-fallback (K, then K-second: the same fake)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.contract.upstreams import FaultLayer, resetting, served
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

KINDS = ("openai", "anthropic", "gemini")
UPSTREAM_MODEL = {"openai": "gpt-up", "anthropic": "claude-up", "gemini": "gemini-up"}
SECRETS = {"OPENAI_KEY": "sk-openai-1", "ANTHROPIC_KEY": "sk-ant-1", "GEMINI_KEY": "gm-key-1"}
# Failover is exercised, not waited for: tiny backoff, no waiting out a Retry-After.
ROUTING = {"retries": 2, "backoff_base": 0.001, "backoff_max": 0.004, "breaker_failures": 50,
           "breaker_open_seconds": 30.0, "rate_limit_cooldown": 5.0,
           "credential_cooldown": 60.0, "max_retry_after": 0.0}


@dataclass
class Fakes:
    openai: FakeOpenAIUpstream
    anthropic: FakeAnthropicUpstream
    gemini: FakeGeminiUpstream
    layers: dict[str, FaultLayer]
    urls: dict[str, str]
    reset_url: str


def provider_url(kind: str, root: str) -> str:
    return root + "/v1" if kind == "openai" else root


def provider_block(kind: str, root: str, keys: list[str], **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"kind": kind, "base_url": provider_url(kind, root),
                             "api_keys": [f"env:{k}" for k in keys], **extra}
    if kind == "openai":
        block.setdefault("supports_reasoning", True)
    return block


def model_block(candidates: list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    return {"candidates": [{"provider": p, "upstream_model": m, "priority": i}
                           for i, (p, m) in enumerate(candidates)],
            "input_token_limit": 100000, "output_token_limit": 8192, **extra}


def contract_config(fakes: Fakes) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for kind in KINDS:
        key = [f"{kind.upper()}_KEY"]
        root, upstream = fakes.urls[kind], UPSTREAM_MODEL[kind]
        providers[kind] = provider_block(kind, root, key)
        providers[f"{kind}-slow"] = provider_block(kind, root, key,
                                                   timeouts={"first_byte": 0.3})
        providers[f"{kind}-reset"] = provider_block(kind, fakes.reset_url, key)
        models[f"{kind}-text"] = model_block(
            [(kind, upstream)], input_mime_types=["text/plain", "image/png"])
        models[f"{kind}-think"] = model_block(
            [(kind, upstream)],
            thinking={"style": "budget", "budget_min": 1024, "budget_max": 24576})
        models[f"{kind}-slow"] = model_block([(f"{kind}-slow", upstream)])
        models[f"{kind}-reset"] = model_block([(f"{kind}-reset", upstream)])
        models[f"{kind}-reset-failover"] = model_block(
            [(f"{kind}-reset", upstream), (kind, upstream)])
        providers[f"{kind}-second"] = provider_block(kind, root, key)
        # Two candidates on the same fake: what the first gets, the second can still answer.
        models[f"{kind}-fallback"] = model_block([(kind, upstream), (f"{kind}-second", upstream)])
    return {"routing": ROUTING, "server": {"metrics": "open"}, "providers": providers,
            "models": models}


def settings_for(tmp_path: Path, config: dict[str, Any], env: dict[str, str]) -> Settings:
    """YAML is a superset of JSON: the config file is written as JSON."""
    path = tmp_path / "cometgate.yaml"
    path.write_bytes(orjson.dumps(config))
    return load_settings(path, data_dir=tmp_path / "data", env={"HOME": str(tmp_path), **env})


async def new_key(settings: Settings) -> str:
    database = await open_database(settings.database_url)
    try:
        _, key = await KeyRepository(database).create("contract")
    finally:
        await database.aclose()
    return key


@asynccontextmanager
async def running_fakes() -> AsyncIterator[Fakes]:
    openai, anthropic, gemini = (FakeOpenAIUpstream(), FakeAnthropicUpstream(),
                                 FakeGeminiUpstream())
    layers = {"openai": FaultLayer(openai.app), "anthropic": FaultLayer(anthropic.app),
              "gemini": FaultLayer(gemini.app)}
    async with AsyncExitStack() as stack:
        roots = await stack.enter_async_context(served(*(layers[kind] for kind in KINDS)))
        urls = dict(zip(KINDS, roots, strict=True))
        reset_url = await stack.enter_async_context(resetting())
        try:
            yield Fakes(openai, anthropic, gemini, layers=layers, urls=urls,
                        reset_url=reset_url)
        finally:
            gemini.resume.set()  # let any held Gemini handler finish so its server can stop


@dataclass
class Gateway:
    http: httpx.AsyncClient
    app: Starlette
    database_url: str
    responses: list[httpx.Response]  # every response the gateway gave, in order

    async def record(self, response: httpx.Response) -> UsageRecord:
        """The one usage record of the request that got `response` (records are journaled at
        once and committed in batches: the journal is flushed first)."""
        await self.app.state.usage_log.flush()
        async with await open_database(self.database_url) as database:
            records = await UsageQueries(database).records()
        request_id = response.headers["x-request-id"]
        found = [r for r in records if r.request_id == request_id]
        assert len(found) == 1, f"{len(found)} records for request {request_id}"
        return found[0]

    async def status_and_class(self, response: httpx.Response) -> tuple[int, str | None]:
        record = await self.record(response)
        return record.status, record.failure_class

    async def tokens(self, model: str) -> dict[str, float]:
        """cometgate_tokens_total for one model, by direction, read from /metrics."""
        text = (await self.http.get("/metrics")).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("cometgate_tokens_total{") and f'model="{model}"' in line:
                direction = line.split('direction="')[1].split('"')[0]
                found[direction] = float(line.rsplit(" ", 1)[1])
        return found


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    key = await new_key(settings)
    app = create_app(settings)
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        responses.append(response)

    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway",
        headers={"x-goog-api-key": key}, timeout=30.0, event_hooks={"response": [keep]},
    ) as http:
        yield Gateway(http, app, settings.database_url, responses)


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with running_fakes() as running:
        yield running


@pytest.fixture
async def gateway(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = settings_for(tmp_path, contract_config(fakes), SECRETS)
    async with running_gateway(settings) as running:
        yield running
