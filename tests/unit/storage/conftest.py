"""Storage fixtures: every test gets a fresh, empty database, on each backend.

`database_url` (and so `database` and `keys`) is parametrized over:
- "sqlite": a new file in the test's temporary directory;
- "postgresql": a new schema, `t_<random>`, in the database named by COMETGATE_TEST_POSTGRES_URL
  (scripts/services starts one and prints that variable; scripts/test exports it), selected on
  every connection with the URL's `search_path` parameter and dropped after the test. Tests are
  thus isolated from each other and from other test runs sharing the server, in any order.

Without the variable the PostgreSQL variants skip, saying why; in CI (CI=true) they fail
instead, because both backends must be tested there. Tests of SQLite specifics (files, pragmas)
use `data_dir` with `sqlite_url`, or `sqlite_database`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cometgate.storage.database import (
    POSTGRES_SEARCH_PATH_PARAMETER,
    Database,
    open_database,
    sqlite_url,
)
from cometgate.storage.keys import KeyRepository

POSTGRES_URL_VARIABLE = "COMETGATE_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def postgres_base_url() -> str:
    """The test server's URL; skips the test without one (fails it in CI)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    reason = f"{POSTGRES_URL_VARIABLE} is not set (scripts/services starts PostgreSQL and sets it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must test PostgreSQL too, but {reason}")
    pytest.skip(reason)


async def fresh_postgres_schema_url(base_url: str) -> AsyncIterator[str]:
    """Creates an empty schema, yields a URL that selects it, then drops it with its contents."""
    schema = f"t_{secrets.token_hex(8)}"
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(base_url).update_query_dict({POSTGRES_SEARCH_PATH_PARAMETER: schema})
        yield url.render_as_string(hide_password=False)
        async with admin.connect() as conn:
            # A connection a test leaked would otherwise make the drop wait for ever.
            await conn.exec_driver_sql("SET lock_timeout = '10s'")
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[str]:
    """A URL of an empty database (nothing migrated yet) on each backend."""
    if request.param == "sqlite":
        yield sqlite_url(data_dir)
        return
    async for url in fresh_postgres_schema_url(postgres_base_url()):
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """For PostgreSQL-only tests: like the "postgresql" `database_url`."""
    async for url in fresh_postgres_schema_url(postgres_base_url()):
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = await open_database(database_url)
    try:
        yield db
    finally:
        await db.aclose()


@pytest.fixture
async def sqlite_database(data_dir: Path) -> AsyncIterator[Database]:
    db = await open_database(sqlite_url(data_dir))
    try:
        yield db
    finally:
        await db.aclose()


@pytest.fixture
def keys(database: Database) -> KeyRepository:
    return KeyRepository(database)
