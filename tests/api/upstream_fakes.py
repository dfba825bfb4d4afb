"""A gateway in process whose models reach the three fake upstreams over real sockets, for the
pass-through tests: each kind K has `K-alias` (one candidate, upstream model UPSTREAM[K]);
`claude-failover` tries Anthropic, then OpenAI; `openai-image` draws through the OpenAI fake's
Images API. Retries are off, so one scripted failure is
one attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.contract.conftest import (
    Fakes,
    model_block,
    new_key,
    provider_block,
    running_fakes,
    settings_for,
)

KINDS = ("anthropic", "openai", "gemini")
UPSTREAM = {"anthropic": "claude-up", "openai": "gpt-up", "gemini": "gemini-up"}
SECRETS = {"ANTHROPIC_KEY": "sk-ant-gateway", "OPENAI_KEY": "sk-openai-gateway",
           "GEMINI_KEY": "gm-gateway"}
UPSTREAM_HEADER = "x-cometgate-upstream-model"


@dataclass
class Gateway:
    http: httpx.AsyncClient
    app: Starlette
    settings: Settings
    fakes: Fakes
    key: str

    async def messages(self, body: bytes, *, query: str = "",
                       headers: dict[str, str] | None = None) -> httpx.Response:
        """An Anthropic caller's POST /v1/messages, as Anthropic's SDKs send it."""
        return await self.http.post(
            "/v1/messages" + (f"?{query}" if query else ""), content=body,
            headers={"x-api-key": self.key, "anthropic-version": "2023-06-01",
                     "content-type": "application/json", **(headers or {})})

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()  # journaled at once, committed in batches
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


def config(fakes: Fakes, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    providers = {kind: provider_block(kind, fakes.urls[kind], [f"{kind.upper()}_KEY"])
                 for kind in KINDS}
    models = {f"{kind}-alias": model_block([(kind, UPSTREAM[kind])]) for kind in KINDS}
    models["claude-failover"] = model_block([("anthropic", UPSTREAM["anthropic"]),
                                             ("openai", UPSTREAM["openai"])])
    # An OpenAI-compatible Images API: $0.04 a picture, and gpt-image's token prices.
    models["openai-image"] = {**model_block([("openai", "gpt-image-up")]), "task": "image",
                              "input_mime_types": ["text/plain", "image/png"],
                              "prices": {"input": 5.0, "output": 40.0, "per_image": 0.04}}
    # An OpenAI-compatible model priced for the gateway's sandbox seconds.
    models["openai-sandboxed"] = {**model_block([("openai", UPSTREAM["openai"])]),
                                  "prices": {"input": 1.0, "output": 2.0,
                                             "per_sandbox_second": 0.001}}
    # A Gemini image model: passed through; Google bills its pictures as output tokens.
    models["gemini-image"] = {**model_block([("gemini", "gemini-image-up")]), "task": "image"}
    return {"routing": {"retries": 0}, "providers": providers, "models": models,
            **(extra or {})}


@asynccontextmanager
async def running(tmp_path: Path, extra: dict[str, Any] | None = None
                  ) -> AsyncIterator[Gateway]:
    """`extra`: more top-level config sections (code_execution, …)."""
    async with running_fakes() as fakes:
        settings = settings_for(tmp_path, config(fakes, extra), SECRETS)
        key = await new_key(settings)
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30.0,
        ) as http:
            yield Gateway(http, app, settings, fakes, key)
