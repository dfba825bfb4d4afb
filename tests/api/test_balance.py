"""GET /v1beta/balance and /v1/balance: the calling key's standing, authenticated like model
calls, with a stub in place of the limiter's state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from cometgate.api.auth import KeyAuthenticator
from cometgate.api.balance_routes import balance_routes
from cometgate.api.error_handlers import gateway_error, http_error
from cometgate.errors import GatewayError
from cometgate.storage.database import Database, open_database, sqlite_url
from cometgate.storage.keys import KeyRecord, KeyRepository
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import UsageQueries, UsageRecord


@dataclass
class Balance:
    http: httpx.AsyncClient
    keys: KeyRepository
    database: Database
    asked: list[int]


@pytest.fixture
async def balance(tmp_path: Path) -> AsyncIterator[Balance]:
    database = await open_database(sqlite_url(tmp_path))
    keys = KeyRepository(database)
    asked: list[int] = []

    async def state(record: KeyRecord) -> Mapping[str, Any]:
        asked.append(record.id)
        return {"remaining_requests_this_minute": 7, "remaining_tokens_this_minute": 900}

    app = Starlette(
        routes=balance_routes(KeyAuthenticator(keys, cache_seconds=0), state,
                              UsageQueries(database)),
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as http:
        yield Balance(http, keys, database, asked)
    await database.aclose()


async def _spend(database: Database, key_id: int, cost: str, when: datetime) -> None:
    record = UsageRecord(
        request_id=f"b{key_id}-{when.timestamp()}", key_id=key_id, model="m", provider="p",
        upstream_model="m", dialect="gemini", stream=True, status=200, failure_class=None,
        prompt_tokens=100, output_tokens=20, thoughts_tokens=5, cached_tokens=0,
        cost_usd=Decimal(cost), latency_ms=1.0, ttfb_ms=0.5, created_at=when,
    )
    async with database.engine.begin() as conn:
        await conn.execute(insert(usage_records).values(record.as_row()))


async def test_balance_reports_limits_budget_usage_and_rate(balance: Balance) -> None:
    record, key = await balance.keys.create(
        "b", rpm=10, tpm=1000, budget_total_usd=Decimal("5"), budget_period="day",
        budget_period_usd=Decimal("1.5"))
    now = datetime.now(UTC)
    await _spend(balance.database, record.id, "0.25", now)
    await _spend(balance.database, record.id, "2", now - timedelta(days=3))
    response = await balance.http.get("/v1beta/balance", headers={"x-goog-api-key": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == {"id": record.id, "name": "b", "prefix": record.prefix,
                           "status": "active", "expires_at": None}
    assert body["limits"] == {"rpm": 10, "tpm": 1000, "rpd": None, "max_concurrent": None}
    assert body["budget"]["spent_total_usd"] == "2.25"
    assert body["budget"]["remaining_total_usd"] == "2.75"
    assert body["budget"]["spent_period_usd"] == "0.25"
    assert body["budget"]["remaining_period_usd"] == "1.25"
    assert body["usage"]["today"]["requests"] == 1
    assert body["usage"]["total"]["total_tokens"] == 250
    assert body["rate"] == {"remaining_requests_this_minute": 7,
                            "remaining_tokens_this_minute": 900}
    assert balance.asked == [record.id]
    assert key not in response.text


async def test_bearer_works_on_v1_and_an_unbudgeted_key_has_no_remaining(
    balance: Balance,
) -> None:
    _, key = await balance.keys.create("plain")
    response = await balance.http.get("/v1/balance", headers={"authorization": f"Bearer {key}"})
    budget = response.json()["budget"]
    assert budget["remaining_total_usd"] is None and budget["period"] is None
    assert budget["spent_total_usd"] == "0"
    assert response.json()["usage"]["period"] is None


async def test_a_key_in_the_url_is_refused_even_when_valid(balance: Balance) -> None:
    _, key = await balance.keys.create("url")
    response = await balance.http.get("/v1beta/balance", params={"key": key})
    assert response.status_code == 400
    assert "URL" in response.json()["error"]["message"]
    assert balance.asked == []


async def test_no_key_and_a_revoked_key_are_refused(balance: Balance) -> None:
    assert (await balance.http.get("/v1beta/balance")).status_code == 403
    record, key = await balance.keys.create("old")
    await balance.keys.revoke(str(record.id))
    response = await balance.http.get("/v1beta/balance", headers={"x-goog-api-key": key})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
