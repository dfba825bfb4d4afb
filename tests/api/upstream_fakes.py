"""A gateway in process whose models reach the three fake upstreams over real sockets, for the
pass-through tests: each kind K has `K-alias` (one candidate, upstream model UPSTREAM[K]);
`claude-failover` tries Anthropic, then OpenAI. Retries are off, so one scripted failure is
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


def config(fakes: Fakes) -> dict[str, Any]:
    providers = {kind: provider_block(kind, fakes.urls[kind], [f"{kind.upper()}_KEY"])
                 for kind in KINDS}
    models = {f"{kind}-alias": model_block([(kind, UPSTREAM[kind])]) for kind in KINDS}
    models["claude-failover"] = model_block([("anthropic", UPSTREAM["anthropic"]),
                                             ("openai", UPSTREAM["openai"])])
    return {"routing": {"retries": 0}, "providers": providers, "models": models}


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_fakes() as fakes:
        settings = settings_for(tmp_path, config(fakes), SECRETS)
        key = await new_key(settings)
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30.0,
        ) as http:
            yield Gateway(http, app, settings, fakes, key)
