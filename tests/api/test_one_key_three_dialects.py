"""One key, three dialects: the same per-minute limit and model allow-list whichever dialect
the request speaks, each refusal in the caller's own envelope, and every request in one usage
table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries

MODEL = "smollm2-135m-instruct"
TEXT = "Say hello."


def gemini(key: str) -> tuple[str, dict[str, str], dict[str, object]]:
    return (f"/v1beta/models/{MODEL}:generateContent", {"x-goog-api-key": key},
            {"contents": [{"parts": [{"text": TEXT}]}]})


def openai(key: str) -> tuple[str, dict[str, str], dict[str, object]]:
    return ("/v1/chat/completions", {"authorization": f"Bearer {key}"},
            {"model": MODEL, "messages": [{"role": "user", "content": TEXT}]})


def anthropic(key: str) -> tuple[str, dict[str, str], dict[str, object]]:
    return ("/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"},
            {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": TEXT}]})


@pytest.fixture
async def app(settings: Settings, fake_provider: Provider) -> AsyncIterator[Starlette]:
    app = create_app(settings, providers={"fake": fake_provider})
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        yield client


async def new_key(settings: Settings, **policy: object) -> str:
    async with await open_database(settings.database_url) as database:
        return (await KeyRepository(database).create("shared", **policy))[1]


async def test_one_rpm_limit_counts_every_dialect(
    app: Starlette, http: httpx.AsyncClient, settings: Settings
) -> None:
    if datetime.now(UTC).second > 50:  # per-minute counts reset at the minute's end
        await anyio.sleep(61 - datetime.now(UTC).second)
    key = await new_key(settings, rpm=2)
    for call in (gemini, openai):
        path, headers, body = call(key)
        assert (await http.post(path, headers=headers, json=body)).status_code == 200
    path, headers, body = anthropic(key)
    refused = await http.post(path, headers=headers, json=body)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.json()["error"]["type"] == "rate_limit_error"
    path, headers, body = openai(key)
    again = await http.post(path, headers=headers, json=body)
    assert again.status_code == 429 and again.json()["error"]["code"] == "rate_limit_exceeded"
    await app.state.usage_log.flush()
    async with await open_database(settings.database_url) as database:
        records = await UsageQueries(database).records()
    assert sorted(r.dialect for r in records) == ["gemini", "openai"]


async def test_a_model_outside_the_allow_list_is_refused_in_each_dialect(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    key = await new_key(settings, allowed_models=("budget-thinker",))
    statuses = {}
    for call in (gemini, openai, anthropic):
        path, headers, body = call(key)
        response = await http.post(path, headers=headers, json=body)
        statuses[call.__name__] = (response.status_code, response.json())
    assert statuses["gemini"][0] == 403
    assert statuses["gemini"][1]["error"]["status"] == "PERMISSION_DENIED"
    assert statuses["openai"][0] == 403
    assert statuses["openai"][1]["error"]["type"] == "request_forbidden"
    assert statuses["anthropic"][0] == 403
    assert statuses["anthropic"][1]["error"]["type"] == "permission_error"
