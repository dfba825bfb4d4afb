"""Each storage test gets its own fresh SQLite database file in a temporary directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cometgate.storage.database import Database, open_database, sqlite_url
from cometgate.storage.keys import KeyRepository


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def database(data_dir: Path) -> AsyncIterator[Database]:
    db = await open_database(sqlite_url(data_dir))
    try:
        yield db
    finally:
        await db.aclose()


@pytest.fixture
def keys(database: Database) -> KeyRepository:
    return KeyRepository(database)
