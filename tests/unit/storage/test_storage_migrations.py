from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, UniqueConstraint, inspect, select, text
from sqlalchemy.exc import IntegrityError

import cometgate
from cometgate.storage.database import Database, create_database, open_database
from cometgate.storage.migrations import (
    MIGRATIONS,
    Migration,
    MigrationError,
    applied_migrations,
    apply_migrations,
    apply_one,
)
from cometgate.storage.schema import metadata, schema_migrations


async def _ledger(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(schema_migrations.c.name).order_by("name"))
        return [name for (name,) in rows]


def _counting_migrations(count: int) -> list[Migration]:
    """Migrations that are not idempotent: running one twice leaves two rows (or fails)."""

    def create_side_table(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE side_effects (migration VARCHAR(50) NOT NULL)"))

    def record(name: str) -> Callable[[Connection], None]:
        def apply(conn: Connection) -> None:
            conn.execute(text("INSERT INTO side_effects (migration) VALUES (:n)"), {"n": name})

        return apply

    names = [f"{i:04d}_step" for i in range(1, count + 1)]
    return [Migration("0000_side_table", create_side_table)] + [
        Migration(name, record(name)) for name in names
    ]


async def _side_effects(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT migration FROM side_effects ORDER BY migration"))
        return [name for (name,) in rows]


async def test_first_open_applies_and_records_every_migration(database: Database) -> None:
    assert await _ledger(database) == sorted(m.name for m in MIGRATIONS)


async def test_reopening_applies_nothing(database_url: str) -> None:
    async with await open_database(database_url) as db:
        first = await _ledger(db)
        async with db.engine.connect() as conn:
            stamped = (await conn.execute(select(schema_migrations.c.applied_at))).scalars().all()
    async with await open_database(database_url) as db:
        assert await apply_migrations(db.engine) == []
        assert await _ledger(db) == first
        async with db.engine.connect() as conn:
            again = (await conn.execute(select(schema_migrations.c.applied_at))).scalars().all()
    assert again == stamped


async def test_migrated_database_matches_the_live_schema(database: Database) -> None:
    def describe(conn: Connection) -> dict[str, object]:
        inspector = inspect(conn)
        return {
            table: (
                {(c["name"], c["nullable"]) for c in inspector.get_columns(table)},
                # PostgreSQL also lists the index behind each unique constraint; those are
                # compared as the constraints they are, below.
                {
                    (i["name"], bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                    if "duplicates_constraint" not in i
                },
                {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)},
            )
            for table in inspector.get_table_names()
        }

    async with database.engine.connect() as conn:
        actual = await conn.run_sync(describe)
    expected = {
        table.name: (
            {(c.name, bool(c.nullable)) for c in table.columns},
            {(i.name, bool(i.unique)) for i in table.indexes},
            {
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, UniqueConstraint)
            },
        )
        for table in metadata.sorted_tables
    }
    assert actual == expected


async def test_the_loser_of_a_claim_backs_off_without_running(database_url: str) -> None:
    runs: list[str] = []

    def once(conn: Connection) -> None:
        runs.append("ran")

    migration = Migration("0001_once", once)
    async with await open_database(database_url, migrations=[migration]) as db:
        # As a second process would, having read the ledger before the winner committed.
        assert await apply_one(db.engine, migration) is False
    assert runs == ["ran"]


async def test_two_engines_opening_a_fresh_database_apply_each_migration_once(
    database_url: str,
) -> None:
    migrations = _counting_migrations(8)
    url = database_url
    first, second = await asyncio.gather(
        open_database(url, migrations=migrations), open_database(url, migrations=migrations)
    )
    try:
        assert await _side_effects(first) == [m.name for m in migrations[1:]]
        assert await _ledger(second) == [m.name for m in migrations]
    finally:
        await first.aclose()
        await second.aclose()


def test_two_processes_opening_a_fresh_database_apply_each_migration_once(
    database_url: str,
) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_storage_migrations import _counting_migrations
        from cometgate.storage.database import open_database

        async def main() -> None:
            db = await open_database(sys.argv[1], migrations=_counting_migrations(8))
            await db.aclose()

        asyncio.run(main())
        """
    )
    source_root = str(Path(cometgate.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": source_root}
    url = database_url
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()

    async def inspect_result() -> list[str]:
        async with await open_database(url, migrations=_counting_migrations(8)) as db:
            return await _side_effects(db)

    assert asyncio.run(inspect_result()) == [f"{i:04d}_step" for i in range(1, 9)]


async def test_a_failed_migration_is_not_recorded_and_is_retried(database_url: str) -> None:
    attempts: list[int] = []

    def flaky(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        if len(attempts) == 1:
            raise RuntimeError("disk on fire")

    migration = Migration("0001_flaky", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await open_database(database_url, migrations=[migration])
    async with await open_database(database_url, migrations=[migration]) as db:
        assert await _ledger(db) == ["0001_flaky"]
    assert len(attempts) == 2


async def test_an_integrity_error_inside_a_migration_is_not_mistaken_for_a_lost_claim(
    database_url: str,
) -> None:
    def violates(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t (x) VALUES (1), (1)"))

    with pytest.raises(IntegrityError):
        await open_database(database_url, migrations=[Migration("0001_bad", violates)])
    database = create_database(database_url)
    try:
        assert await applied_migrations(database.engine) == set()
    finally:
        await database.aclose()


async def test_a_database_from_a_newer_version_is_refused(database_url: str) -> None:
    newer = [*MIGRATIONS, Migration("9999_from_the_future", lambda conn: None)]
    async with await open_database(database_url, migrations=newer):
        pass
    with pytest.raises(MigrationError, match="9999_from_the_future"):
        await open_database(database_url)


async def test_duplicate_migration_names_are_refused(database_url: str) -> None:
    twice = [Migration("0001_same", lambda conn: None), Migration("0001_same", lambda conn: None)]
    with pytest.raises(MigrationError, match="0001_same"):
        await open_database(database_url, migrations=twice)
