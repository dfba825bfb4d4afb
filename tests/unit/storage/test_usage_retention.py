"""The usage retention sweep: old records go in small batches, oldest first; young ones,
daily rollups, and everything when no retention is set, stay."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.unit.storage.test_usage_rollups import written
from tests.unit.storage.test_usage_writer import stored_ids, usage_record

from cometgate.storage.database import Database
from cometgate.storage.schema import usage_rollups_day, usage_rollups_hour
from cometgate.storage.usage_retention import SweepResult, UsageRetention

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


async def count(database: Database, table: object) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_records_past_retention_are_deleted_in_batches(database: Database) -> None:
    old = [usage_record(f"old{n}", created_at=NOW - timedelta(days=40, hours=n))
           for n in range(7)]
    young = [usage_record(f"young{n}", created_at=NOW - timedelta(days=2, hours=n))
             for n in range(3)]
    for record in [*reversed(old), *young]:  # oldest first, as ids grow with time
        await written(database, [record])
    hourly_before = await count(database, usage_rollups_hour)
    retention = UsageRetention(database, records=timedelta(days=30), hourly_rollups=None,
                               interval_seconds=60, batch=2)
    assert await retention.sweep_once(NOW) == SweepResult(records=7)
    assert await stored_ids(database) == {r.request_id for r in young}
    # Rollups are the lasting account: deleting records leaves them as they were.
    assert await count(database, usage_rollups_hour) == hourly_before
    assert await retention.sweep_once(NOW) == SweepResult()


async def test_hourly_rollups_past_their_retention_go_and_daily_ones_stay(
    database: Database,
) -> None:
    await written(database, [usage_record("a", created_at=NOW - timedelta(days=100)),
                             usage_record("b", created_at=NOW - timedelta(days=1))])
    retention = UsageRetention(database, records=None, hourly_rollups=timedelta(days=90),
                               interval_seconds=60)
    assert await retention.sweep_once(NOW) == SweepResult(hourly_rollups=1)
    assert await count(database, usage_rollups_hour) == 1
    assert await count(database, usage_rollups_day) == 2
    assert await stored_ids(database) == {"a", "b"}


async def test_without_retention_nothing_runs_and_nothing_is_deleted(
    database: Database,
) -> None:
    await written(database, [usage_record("ancient", created_at=NOW - timedelta(days=9000))])
    retention = UsageRetention(database, records=None, hourly_rollups=None,
                               interval_seconds=60)
    assert not retention.active
    retention.start()
    await retention.aclose()
    assert await retention.sweep_once(NOW) == SweepResult()
    assert await stored_ids(database) == {"ancient"}


async def test_the_periodic_sweep_runs_at_start(database: Database) -> None:
    await written(database, [usage_record("stale", created_at=datetime(2000, 1, 1, tzinfo=UTC))])
    retention = UsageRetention(database, records=timedelta(days=1), hourly_rollups=None,
                               interval_seconds=3600)
    retention.start()
    for _ in range(200):
        if not await stored_ids(database):
            break
        await asyncio.sleep(0.01)
    await retention.aclose()
    assert await stored_ids(database) == set()


async def test_a_failed_round_is_logged_and_reports_nothing(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with database.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE usage_rollups_hour")
    retention = UsageRetention(database, records=None, hourly_rollups=timedelta(days=1),
                               interval_seconds=60)
    with caplog.at_level(logging.ERROR):
        assert await retention.sweep_once(NOW) == SweepResult()
    assert "the usage retention sweep failed" in caplog.text


def test_a_batch_below_one_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        UsageRetention(database, records=None, hourly_rollups=None, interval_seconds=1,
                       batch=0)
