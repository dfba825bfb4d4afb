"""The group-commit usage writer: batching, durability on return, failures, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError

from cometgate.storage.database import Database, create_database
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_writer import UsageWriter, UsageWriterClosedError

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def usage_record(request_id: str = "r", **overrides: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "request_id": request_id, "key_id": 1, "model": "flash", "provider": "google",
        "upstream_model": "gemini-2.5-flash", "dialect": "gemini", "stream": False,
        "status": 200, "failure_class": None, "prompt_tokens": 10, "output_tokens": 5,
        "thoughts_tokens": 0, "cached_tokens": 0, "cost_usd": Decimal("0.000012500"),
        "latency_ms": 12.5, "ttfb_ms": 3.25, "created_at": NOON,
    }
    fields.update(overrides)
    return UsageRecord(**fields)


@pytest.fixture
async def writer(database: Database) -> AsyncIterator[UsageWriter]:
    started = UsageWriter(database)
    started.start()
    try:
        yield started
    finally:
        await started.aclose()


async def stored_ids(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set((await conn.scalars(select(usage_records.c.request_id))).all())


@pytest.fixture
def engine_commits() -> Iterator[list[int]]:
    """Commits on any engine: on SQLite files the writer uses a synchronous engine of its own
    (see storage/sqlite_record_sink), on PostgreSQL the database's async one."""
    commits: list[int] = []

    def counted(conn: object) -> None:
        commits.append(1)

    event.listen(Engine, "commit", counted)
    try:
        yield commits
    finally:
        event.remove(Engine, "commit", counted)


async def test_concurrent_records_share_a_handful_of_transactions(
    database: Database, writer: UsageWriter, engine_commits: list[int]
) -> None:
    commits = engine_commits
    ids = [f"req-{n:03d}" for n in range(100)]
    await asyncio.gather(*(writer.record(usage_record(i)) for i in ids))
    assert await stored_ids(database) == set(ids)
    assert 1 <= len(commits) <= 5


async def test_a_lone_record_is_written_in_its_own_transaction(
    database: Database, writer: UsageWriter, engine_commits: list[int]
) -> None:
    commits = engine_commits
    await writer.record(usage_record("alone"))
    assert len(commits) == 1 and await stored_ids(database) == {"alone"}


async def test_batches_are_capped(database: Database, engine_commits: list[int]) -> None:
    small = UsageWriter(database, max_batch=7)
    small.start()
    commits = engine_commits
    await asyncio.gather(*(small.record(usage_record(f"r{n}")) for n in range(30)))
    await small.aclose()
    assert len(commits) >= 5  # 30 rows, at most 7 per transaction
    assert len(await stored_ids(database)) == 30


async def test_each_record_is_visible_to_another_connection_when_it_returns(
    database: Database, writer: UsageWriter, database_url: str
) -> None:
    other = create_database(database_url)  # its own engine: nothing shared with the writer

    async def record_then_look(request_id: str) -> bool:
        await writer.record(usage_record(request_id))
        async with other.engine.connect() as conn:
            query = select(func.count()).where(usage_records.c.request_id == request_id)
            return await conn.scalar(query) == 1

    try:
        seen = await asyncio.gather(*(record_then_look(f"v{n}") for n in range(20)))
    finally:
        await other.aclose()
    assert seen == [True] * 20


async def test_a_duplicate_fails_alone_and_its_batch_is_still_written(
    database: Database, writer: UsageWriter
) -> None:
    await writer.record(usage_record("dup"))
    batch = [usage_record(f"ok{n}") for n in range(9)]
    batch.insert(4, usage_record("dup", key_id=2))
    results = await asyncio.gather(*(writer.record(r) for r in batch), return_exceptions=True)
    assert [isinstance(r, IntegrityError) for r in results] == [r.request_id == "dup"
                                                                 for r in batch]
    assert await stored_ids(database) == {"dup"} | {f"ok{n}" for n in range(9)}
    async with database.engine.connect() as conn:
        owner = await conn.scalar(select(usage_records.c.key_id)
                                  .where(usage_records.c.request_id == "dup"))
    assert owner == 1  # the first record kept; the duplicate changed nothing


async def test_two_records_with_one_id_in_one_batch_keep_the_first(
    database: Database, writer: UsageWriter
) -> None:
    first, second = usage_record("twin", key_id=1), usage_record("twin", key_id=2)
    results = await asyncio.gather(writer.record(first), writer.record(second),
                                   return_exceptions=True)
    assert results[0] is None and isinstance(results[1], IntegrityError)
    assert await stored_ids(database) == {"twin"}


async def test_a_database_failure_fails_the_batch_and_the_writer_carries_on(
    database: Database, writer: UsageWriter
) -> None:
    async with database.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE usage_records RENAME TO usage_records_away"))
    results = await asyncio.gather(*(writer.record(usage_record(f"lost{n}")) for n in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    async with database.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE usage_records_away RENAME TO usage_records"))
    await writer.record(usage_record("after"))
    assert await stored_ids(database) == {"after"}


async def test_close_writes_everything_already_queued(database: Database) -> None:
    closing = UsageWriter(database)
    closing.start()
    pending = [asyncio.create_task(closing.record(usage_record(f"q{n}"))) for n in range(25)]
    await asyncio.sleep(0)  # let every task enqueue its record
    await closing.aclose()
    await asyncio.gather(*pending)
    assert len(await stored_ids(database)) == 25
    await closing.aclose()  # a second close is harmless


async def test_a_cancelled_caller_still_gets_its_record_written(database: Database) -> None:
    cancelling = UsageWriter(database)
    cancelling.start()
    task = asyncio.create_task(cancelling.record(usage_record("gone")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cancelling.aclose()
    assert await stored_ids(database) == {"gone"}


async def test_recording_needs_a_running_writer(database: Database) -> None:
    idle = UsageWriter(database)
    with pytest.raises(UsageWriterClosedError):
        await idle.record(usage_record("early"))
    idle.start()
    with pytest.raises(RuntimeError, match="already started"):
        idle.start()
    await idle.aclose()
    with pytest.raises(UsageWriterClosedError):
        await idle.record(usage_record("late"))
    assert await stored_ids(database) == set()


def test_max_batch_must_be_positive(sqlite_database: Database) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        UsageWriter(sqlite_database, max_batch=0)


async def test_records_read_back_as_written(database: Database, writer: UsageWriter) -> None:
    original = usage_record("exact", stream=True, failure_class="transient", status=503,
                            provider=None, upstream_model=None, ttfb_ms=None,
                            cost_usd=Decimal("1234.000000001"), searches=2, fetched_pages=3,
                            sandbox_seconds=1.25, images=4)
    await writer.record(original)
    columns = [usage_records.c[name] for name in original.as_row()]
    async with database.engine.connect() as conn:
        row = (await conn.execute(select(*columns))).one()
    assert row._asdict() == original.as_row()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "x" * 33}, "request_id"),
        ({"model": "m" * 201}, "model is longer"),
        ({"dialect": "d" * 17}, "dialect is longer"),
        ({"prompt_tokens": -1}, "negative"),
        ({"cached_tokens": -5}, "negative"),
        ({"images": -1}, "billable unit"),
        ({"sandbox_seconds": -0.5}, "billable unit"),
        ({"cost_usd": Decimal("-0.1")}, "cost_usd"),
        ({"cost_usd": Decimal("NaN")}, "cost_usd"),
        ({"latency_ms": -1.0}, "latency"),
        ({"status": 42}, "HTTP status"),
        ({"created_at": datetime(2025, 1, 1)}, "timezone-aware"),
    ],
)
def test_records_that_could_not_be_stored_are_refused_when_built(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        usage_record(**overrides)


def test_a_record_is_a_value() -> None:
    record = usage_record("r")
    assert replace(record) == record
    with pytest.raises(AttributeError):
        record.status = 500  # type: ignore[misc]


async def test_sqlite_keeps_the_synchronous_level_the_writer_relies_on(
    sqlite_database: Database,
) -> None:
    # The writer's durability note relies on WAL with synchronous NORMAL (1): commits survive
    # kill -9 (tested in test_usage_durability) without an fsync per commit.
    async with sqlite_database.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1
