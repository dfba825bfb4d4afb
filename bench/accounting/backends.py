"""The two storage + limits backends a run measures, each made fresh and removed afterwards.

    sqlite     a new SQLite file in the run's temporary directory; in-process limits
    postgres   a new schema `bench_<random>` in the database scripts/services started, selected
               with the URL's `search_path` parameter; limits in the Redis it started

The bench key's id is made unique on PostgreSQL (its sequence restarted at a random high value)
because the gateway's Redis limiter names its counters `cg:{<key id>}:…` with no way to change
the prefix from the configuration: a key id 1 would share counters with any other gateway or
test on that Redis database. Those counters are deleted when the backend is removed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis.asyncio
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cometgate.storage.database import POSTGRES_SEARCH_PATH_PARAMETER, open_database, sqlite_url
from cometgate.storage.keys import KeyRepository

POSTGRES_VARIABLE = "COMETGATE_TEST_POSTGRES_URL"
REDIS_VARIABLE = "COMETGATE_TEST_REDIS_URL"
BENCH_MODEL = "gem"

# Limits high enough never to refuse a request of the run, yet every one of them is counted:
# the limiter checks and updates rpm, tpm, rpd, concurrency, the total and the monthly budget.
BENCH_KEY_POLICY: dict[str, Any] = {
    "allowed_models": (BENCH_MODEL,),
    "rpm": 1_000_000,
    "tpm": 2_000_000_000,
    "rpd": 100_000_000,
    "max_concurrent": 10_000,
    "budget_total_usd": Decimal(1_000_000),
    "budget_period": "month",
    "budget_period_usd": Decimal(500_000),
}


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    schema: str | None = None  # PostgreSQL only: dropped by `remove`
    key: str = ""
    key_id: int = 0

    def gateway_env(self) -> dict[str, str]:
        """What the gateway process reads its storage and limits from."""
        env = {"COMETGATE_DATABASE_URL": self.database_url}
        if self.redis_url:
            env["COMETGATE_REDIS_URL"] = self.redis_url
        return env


def services_missing() -> list[str]:
    return [v for v in (POSTGRES_VARIABLE, REDIS_VARIABLE) if not os.environ.get(v)]


async def sqlite_backend(workdir: Path) -> Backend:
    backend = Backend("sqlite", sqlite_url(workdir / "gateway-data"), None)
    await _create_key(backend, first_id=None)
    return backend


async def postgres_backend() -> Backend:
    base, redis_url = os.environ[POSTGRES_VARIABLE], os.environ[REDIS_VARIABLE]
    schema, url = await fresh_schema(base)
    backend = Backend("postgres", url, redis_url, schema=schema)
    await _create_key(backend, first_id=1_000_000 + secrets.randbelow(1_000_000_000))
    return backend


async def fresh_schema(base_url: str) -> tuple[str, str]:
    """An empty schema and a URL that selects it."""
    schema = f"bench_{secrets.token_hex(6)}"
    await _admin_sql(base_url, f'CREATE SCHEMA "{schema}"')
    url = make_url(base_url).update_query_dict({POSTGRES_SEARCH_PATH_PARAMETER: schema})
    return schema, url.render_as_string(hide_password=False)


async def drop_schema(base_url: str, schema: str) -> None:
    await _admin_sql(base_url, "SET lock_timeout = '10s'", f'DROP SCHEMA "{schema}" CASCADE')


async def remove(backend: Backend) -> None:
    """Drops the schema and the Redis counters of the bench key; SQLite files go with the
    run's temporary directory."""
    if backend.schema is not None:
        await drop_schema(os.environ[POSTGRES_VARIABLE], backend.schema)
    if backend.redis_url and backend.key_id:
        client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(backend.redis_url)
        try:
            names = [n async for n in client.scan_iter(match=f"cg:{{{backend.key_id}}}:*")]
            if names:
                await client.delete(*names)
        finally:
            await client.aclose()


async def _create_key(backend: Backend, *, first_id: int | None) -> None:
    database = await open_database(backend.database_url)
    try:
        if first_id is not None:
            async with database.engine.begin() as conn:
                await conn.exec_driver_sql(
                    f"ALTER SEQUENCE api_keys_id_seq RESTART WITH {first_id}")
        record, key = await KeyRepository(database, known_models=[BENCH_MODEL]).create(
            "bench-accounting", **BENCH_KEY_POLICY)
    finally:
        await database.aclose()
    backend.key, backend.key_id = key, record.id


async def _admin_sql(base_url: str, *statements: str) -> None:
    engine = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()
