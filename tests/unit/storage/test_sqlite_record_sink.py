"""The SQLite file sink stores exactly what a SQLAlchemy insert of the same records stores, one
multi-row statement per chunk of rows, and its failures are the row errors the writer retries
row by row."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError
from tests.unit.storage.test_usage_writer import usage_record

from cometgate.storage.database import Database, migrate, open_database
from cometgate.storage.schema import usage_records
from cometgate.storage.sqlite_record_sink import SqliteRecordSink
from cometgate.storage.usage_rollups import insert_records

RECORDS = [
    usage_record("plain"),
    usage_record("rich", provider=None, upstream_model=None, stream=True, status=429,
                 failure_class="rate_limited", cost_usd=Decimal("1.234567891"),
                 latency_ms=0.125, ttfb_ms=None,
                 created_at=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                 searches=3, fetched_pages=2, sandbox_seconds=1.5, images=1,
                 batch_id="batches/abc", dropped="generationConfig.seed,safetySettings"),
    usage_record("zero", cost_usd=Decimal(0), prompt_tokens=0, output_tokens=0),
]


async def _database(path: Path) -> Database:
    database = await open_database(f"sqlite+aiosqlite:///{path}")
    await migrate(database)
    return database


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        order = "request_id" if table == "usage_records" else "1, 2, 3"
        columns = "*" if table != "usage_records" else ", ".join(
            c.name for c in usage_records.columns if c.name != "id")
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}").fetchall()


async def test_it_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    by_sink, by_sqlalchemy = tmp_path / "sink.db", tmp_path / "core.db"
    database = await _database(by_sink)
    sink = SqliteRecordSink(database)
    try:
        await sink.insert(RECORDS)
    finally:
        sink.close()
        await database.aclose()
    reference = await _database(by_sqlalchemy)  # the same schema, written the usual way
    await reference.aclose()
    engine = create_engine(f"sqlite:///{by_sqlalchemy}")
    with engine.begin() as conn:
        insert_records(conn, RECORDS)
    engine.dispose()
    for table in ("usage_records", "usage_rollups_hour", "usage_rollups_day"):
        stored = _rows(by_sink, table)
        assert stored, table
        assert stored == _rows(by_sqlalchemy, table), table


async def test_rows_past_the_variable_limit_go_in_several_statements(tmp_path: Path) -> None:
    database = await _database(tmp_path / "small.db")
    sink = SqliteRecordSink(database)
    statements: list[str] = []

    def limited(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Room for two rows' values per statement: 5 records need 3 statements.
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER,
                                  2 * len(usage_records.columns))

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO usage_records"):
            statements.append(statement)

    engine: Engine = sink._engine
    event.listen(engine, "connect", limited)
    event.listen(engine, "before_cursor_execute", seen)
    records = [replace(RECORDS[0], request_id=f"r{n}") for n in range(5)]
    try:
        await sink.insert(records)
    finally:
        sink.close()
    async with database.engine.connect() as conn:
        count = len((await conn.execute(usage_records.select())).all())
    await database.aclose()
    assert count == 5
    assert len(statements) == 3


async def test_a_duplicate_fails_the_whole_statement_as_a_row_error(tmp_path: Path) -> None:
    database = await _database(tmp_path / "dup.db")
    sink = SqliteRecordSink(database)
    try:
        await sink.insert([RECORDS[0]])
        with pytest.raises(IntegrityError):
            await sink.insert([RECORDS[1], RECORDS[0]])
        async with database.engine.connect() as conn:
            ids = (await conn.scalars(usage_records.select().with_only_columns(
                usage_records.c.request_id))).all()
    finally:
        sink.close()
        await database.aclose()
    assert ids == ["plain"]  # the failed statement left nothing behind

