from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, make_url, select, text
from sqlalchemy.exc import DatabaseError, StatementError

from cometgate.storage.database import (
    Database,
    create_database,
    migrate,
    open_database,
    sqlite_url,
)
from cometgate.storage.migrations import MIGRATIONS, Migration
from cometgate.storage.schema import api_keys


def test_sqlite_url_names_the_database_file_in_the_data_directory(tmp_path: Path) -> None:
    url = make_url(sqlite_url(tmp_path / "state"))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "state" / "cometgate.db")


def test_sqlite_url_survives_characters_that_mean_something_in_urls(tmp_path: Path) -> None:
    awkward = tmp_path / "a b" / "c?d#e%f"
    assert make_url(sqlite_url(awkward)).database == str(awkward / "cometgate.db")


async def test_open_creates_missing_parent_directories(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "er" / "data"
    async with await open_database(sqlite_url(data_dir)):
        pass
    assert (data_dir / "cometgate.db").is_file()


async def test_the_database_and_its_directory_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "private"
    async with await open_database(sqlite_url(data_dir)) as database:
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
    assert data_dir.stat().st_mode & 0o777 == 0o700
    files = [p for p in data_dir.iterdir() if p.name.startswith("cometgate.db")]
    assert files  # the database, and its -wal/-shm while they exist
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: 0o600 for p in files}


async def test_a_world_readable_database_is_made_private(tmp_path: Path) -> None:
    tmp_path.joinpath("cometgate.db").touch(mode=0o644)
    tmp_path.joinpath("cometgate.db").chmod(0o644)
    async with await open_database(sqlite_url(tmp_path)):
        pass
    assert tmp_path.joinpath("cometgate.db").stat().st_mode & 0o777 == 0o600


async def test_every_connection_gets_wal_busy_timeout_and_foreign_keys(
    sqlite_database: Database,
) -> None:
    async with sqlite_database.engine.connect() as conn:
        journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        foreign_keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        busy_timeout = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    assert journal == "wal"
    assert foreign_keys == 1
    assert busy_timeout >= 1000


async def test_a_bare_sqlite_url_is_given_the_async_driver(tmp_path: Path) -> None:
    path = tmp_path / "bare.db"
    async with await open_database(f"sqlite:///{path}") as db:
        assert db.engine.url.drivername == "sqlite+aiosqlite"
        assert db.dialect_name == "sqlite"
    assert path.is_file()


async def test_in_memory_database_opens_and_is_migrated() -> None:
    async with await open_database("sqlite+aiosqlite://") as db:
        async with db.engine.connect() as conn:
            count = (await conn.execute(select(api_keys.c.id))).all()
    assert count == []


async def test_a_failing_migration_fails_the_open(database_url: str) -> None:
    def broken(conn: Connection) -> None:
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DatabaseError, match="no_such_table"):
        await open_database(database_url, migrations=[Migration("0001_broken", broken)])


async def test_timestamps_come_back_aware_and_in_utc(database: Database) -> None:
    plus_two = timezone(timedelta(hours=2))
    written = datetime(2030, 1, 2, 14, 30, 15, 123456, tzinfo=plus_two)
    async with database.engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                name="clock", prefix="cg-12345678", key_hash="0" * 64, created_at=written
            )
        )
        read = (await conn.execute(select(api_keys.c.created_at))).scalar_one()
    assert read == written
    assert read.tzinfo is UTC
    assert read.hour == 12


async def test_naive_timestamps_are_refused(database: Database) -> None:
    insert_naive = api_keys.insert().values(
        name="naive", prefix="cg-12345678", key_hash="1" * 64, created_at=datetime(2030, 1, 1)
    )
    with pytest.raises(StatementError, match="timezone-aware") as caught:
        async with database.engine.begin() as conn:
            await conn.execute(insert_naive)
    assert isinstance(caught.value.orig, ValueError)


async def test_open_waits_for_another_connection_holding_a_fresh_file(tmp_path: Path) -> None:
    path = tmp_path / "cometgate.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE held (x INTEGER)")
        opening = asyncio.create_task(open_database(sqlite_url(tmp_path)))
        await asyncio.sleep(0.05)  # let the open reach the lock; correctness does not need it
        holder.execute("COMMIT")
    finally:
        holder.close()
    async with await opening as db, db.engine.connect() as conn:
        journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
    assert journal == "wal"


async def test_a_file_that_is_not_a_database_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "cometgate.db").write_bytes(b"this is not an SQLite file, just text " * 100)
    with pytest.raises(DatabaseError, match="not a database"):
        await open_database(sqlite_url(tmp_path))


async def test_create_then_migrate_is_open_in_two_steps(tmp_path: Path) -> None:
    database = create_database(sqlite_url(tmp_path / "data"))
    try:
        assert (tmp_path / "data").is_dir()
        # Made empty and private up front, but no connection made yet.
        assert (tmp_path / "data" / "cometgate.db").stat().st_size == 0
        assert await migrate(database) == [m.name for m in MIGRATIONS]
        assert await migrate(database) == []
        assert (tmp_path / "data" / "cometgate.db").is_file()
    finally:
        await database.aclose()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_bare_postgresql_url_is_given_asyncpg(scheme: str) -> None:
    database = create_database(f"{scheme}://someone:hunter2@127.0.0.1:1/nowhere")
    try:
        assert database.engine.url.drivername == "postgresql+asyncpg"
        assert database.dialect_name == "postgresql"
        assert "hunter2" not in repr(database)  # no connection is made before migrate
    finally:
        await database.aclose()


@pytest.mark.parametrize("query", ["search_path=%20", "search_path=a&search_path=b"])
def test_a_search_path_must_be_one_nonempty_value(query: str) -> None:
    with pytest.raises(ValueError, match="search_path"):
        create_database(f"postgresql+asyncpg://someone@127.0.0.1:1/nowhere?{query}")


async def test_the_search_path_parameter_puts_every_table_in_that_schema(
    postgres_url: str,
) -> None:
    schema = make_url(postgres_url).query["search_path"]
    async with await open_database(postgres_url) as db, db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_schema()"))).scalar_one() == schema
        rows = await conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_name IN ('api_keys', 'schema_migrations', 'usage_records')"
                " AND table_schema = :schema"
            ),
            {"schema": schema},
        )
        assert sorted(name for _, name in rows) == [
            "api_keys",
            "schema_migrations",
            "usage_records",
        ]
