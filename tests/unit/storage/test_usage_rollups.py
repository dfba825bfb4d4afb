"""Hourly and daily rollups: kept by the writer in the records' own transaction (so they agree
with the records after batches, row-by-row retries and journal recovery), back-filled by their
migration, and read by the console's queries (`series`, `recent`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from tests.unit.storage.test_usage_log import log_line, started_log
from tests.unit.storage.test_usage_writer import usage_record

from cometgate.storage.database import Database, open_database
from cometgate.storage.migrations import MIGRATIONS
from cometgate.storage.schema import usage_records, usage_rollups_day, usage_rollups_hour
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_rollups import (
    ROLLUP_SUMS,
    UsagePoint,
    UsageRollups,
    cost_nanos,
    day_of,
    hour_of,
)
from cometgate.storage.usage_writer import UsageWriter

T0 = datetime(2025, 3, 1, 22, 30, tzinfo=UTC)  # two hours before a UTC midnight


def varied_records(count: int) -> list[UsageRecord]:
    """Records over four hours across midnight, three keys, two models, with a provider or
    none, some failures, awkward costs."""
    return [
        usage_record(
            f"v{n}", key_id=n % 3 + 1, model=("flash", "pro")[n % 2],
            provider=None if n % 7 == 0 else ("google", "openai")[n % 4 // 2],
            status=(200, 200, 429, 500, 200)[n % 5], prompt_tokens=n, output_tokens=2 * n,
            thoughts_tokens=n % 4, cached_tokens=n % 3,
            cost_usd=Decimal("0.000000001") * (n * 7919 % 1000003), latency_ms=1.5 * n,
            created_at=T0 + timedelta(minutes=11 * n),
        )
        for n in range(count)
    ]


def expected_rollups(records: list[UsageRecord], *, daily: bool) -> dict[tuple[Any, ...], Any]:
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0, 0, 0.0])
    for r in records:
        start = (day_of if daily else hour_of)(r.created_at)
        row = sums[(start, r.key_id, r.model, r.provider or "")]
        for i, value in enumerate((1, int(r.status >= 400), r.prompt_tokens, r.output_tokens,
                                   r.thoughts_tokens, r.cached_tokens, cost_nanos(r.cost_usd),
                                   r.latency_ms)):
            row[i] += value
    return {key: tuple(value) for key, value in sums.items()}


async def stored_rollups(database: Database, *, daily: bool) -> dict[tuple[Any, ...], Any]:
    table = usage_rollups_day if daily else usage_rollups_hour
    key = (table.c.bucket_start, table.c.key_id, table.c.model, table.c.provider)
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(*key, *(table.c[n] for n in ROLLUP_SUMS)))).all()
    return {tuple(row[:4]): (*tuple(int(v) for v in row[4:-1]), pytest.approx(row[-1]))
            for row in rows}


async def assert_rollups_match(database: Database, records: list[UsageRecord]) -> None:
    for daily in (False, True):
        assert await stored_rollups(database, daily=daily) == expected_rollups(
            records, daily=daily)


async def written(database: Database, records: list[UsageRecord]) -> None:
    writer = UsageWriter(database)
    writer.start()
    try:
        await asyncio.gather(*(writer.record(r) for r in records))
    finally:
        await writer.aclose()


async def test_rollups_equal_the_sums_of_the_records_written(database: Database) -> None:
    records = varied_records(40)
    await written(database, records[:25])
    await written(database, records[25:])  # a second round adds to the existing buckets
    await assert_rollups_match(database, records)
    days = {key[0] for key in await stored_rollups(database, daily=True)}
    assert days == {datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)}


async def test_a_duplicate_in_a_batch_is_not_counted_and_the_rest_are(
    database: Database,
) -> None:
    first = usage_record("same", created_at=T0)
    await written(database, [first])
    writer = UsageWriter(database)
    writer.start()
    again = usage_record("same", prompt_tokens=999, created_at=T0)
    others = [usage_record(f"o{n}", created_at=T0) for n in range(3)]
    outcomes = await asyncio.gather(*(writer.record(r) for r in [*others, again]),
                                    return_exceptions=True)
    await writer.aclose()
    assert isinstance(outcomes[-1], IntegrityError)
    await assert_rollups_match(database, [first, *others])


async def test_recovery_of_a_journal_counts_each_record_once(
    database: Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    committed = usage_record("committed-before-the-kill", created_at=T0)
    await written(database, [committed])
    only_journaled = usage_record("journaled-only", status=502, failure_class="transient",
                                  stream=True, created_at=T0 + timedelta(minutes=5))
    journal.mkdir(parents=True)
    (journal / "9-dead.jsonl").write_bytes(log_line(committed) + log_line(only_journaled))
    log, writer = await started_log(database, journal)
    await log.aclose()
    await writer.aclose()
    await assert_rollups_match(database, [committed, only_journaled])


async def test_the_migration_backfills_rollups_of_existing_records(database_url: str) -> None:
    before = [m for m in MIGRATIONS if m.name != "0011_usage_rollups"]
    records = varied_records(30)
    database = await open_database(database_url, migrations=before)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(insert(usage_records), [
                {k: v for k, v in r.as_row().items() if k != "dropped"} for r in records])
    finally:
        await database.aclose()
    database = await open_database(database_url)
    try:
        await assert_rollups_match(database, records)
        await written(database, [usage_record("after", created_at=T0)])  # then kept up
        await assert_rollups_match(database, [*records, usage_record("after", created_at=T0)])
    finally:
        await database.aclose()


async def test_series_groups_by_key_model_or_provider_per_hour_or_day(
    database: Database,
) -> None:
    records = varied_records(40)
    await written(database, records)
    rollups = UsageRollups(database)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=2)
    for group_by, of in (("key", lambda r: str(r.key_id)), ("model", lambda r: r.model),
                         ("provider", lambda r: r.provider or "")):
        for bucket, cut in (("hour", hour_of), ("day", day_of)):
            points = await rollups.series(start=start, end=end, bucket=bucket,  # type: ignore[arg-type]
                                          group_by=group_by)  # type: ignore[arg-type]
            assert points == expected_points(records, cut, of)


def expected_points(records: list[UsageRecord], cut: Any, of: Any) -> list[UsagePoint]:
    groups: dict[tuple[datetime, str], list[UsageRecord]] = defaultdict(list)
    for r in records:
        groups[(cut(r.created_at), of(r))].append(r)
    return [
        UsagePoint(
            bucket_start=start, group=group, requests=len(rs),
            errors=sum(r.status >= 400 for r in rs),
            prompt_tokens=sum(r.prompt_tokens for r in rs),
            output_tokens=sum(r.output_tokens for r in rs),
            cost_usd=sum((r.cost_usd for r in rs), Decimal(0)),
            thoughts_tokens=sum(r.thoughts_tokens for r in rs),
            cached_tokens=sum(r.cached_tokens for r in rs),
            latency_ms_sum=pytest.approx(sum(r.latency_ms for r in rs)),  # type: ignore[arg-type]
        )
        for (start, group), rs in sorted(groups.items())
    ]


async def test_series_filters_and_keeps_buckets_in_the_half_open_period(
    database: Database,
) -> None:
    records = varied_records(40)
    await written(database, records)
    rollups = UsageRollups(database)
    start, end = hour_of(T0) + timedelta(hours=1), hour_of(T0) + timedelta(hours=3)
    points = await rollups.series(start=start, end=end, bucket="hour", group_by="model",
                                  key_id=2, provider="google")
    chosen = [r for r in records if start <= hour_of(r.created_at) < end and r.key_id == 2
              and r.provider == "google"]
    assert points == expected_points(chosen, hour_of, lambda r: r.model)
    assert {p.bucket_start for p in points} == {start, start + timedelta(hours=1)}
    flash = await rollups.series(start=start, end=end, bucket="day", group_by="key",
                                 model="flash")
    assert {p.group for p in flash} <= {"1", "2", "3"}
    assert sum(p.requests for p in flash) == sum(
        1 for r in records if r.model == "flash" and start <= day_of(r.created_at) < end)


async def test_series_refuses_bad_arguments(database: Database) -> None:
    rollups = UsageRollups(database)
    with pytest.raises(ValueError, match="bucket must be hour or day, not 'week'"):
        await rollups.series(start=T0, end=T0, bucket="week", group_by="key")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group_by must be key, model or provider"):
        await rollups.series(start=T0, end=T0, bucket="day", group_by="day")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        await rollups.series(start=T0.replace(tzinfo=None), end=T0, bucket="day",
                             group_by="key")


async def test_recent_pages_newest_first_with_filters(database: Database) -> None:
    records = [*varied_records(40),
               usage_record("dropped-one", dropped="generationConfig.topK,tools[0]",
                            created_at=T0 + timedelta(days=1))]
    for record in records:  # one at a time: ids follow this order
        await written(database, [record])
    rollups = UsageRollups(database)
    newest = await rollups.recent(limit=1)
    assert newest[0].request_id == "dropped-one"
    assert newest[0].dropped == "generationConfig.topK,tools[0]"
    assert newest[0].id is not None
    pages: list[UsageRecord] = []
    before: int | None = None
    while page := await rollups.recent(limit=4, before_id=before, key_id=1, status="error"):
        pages.extend(page)
        before = page[-1].id
    wanted = [r.request_id for r in reversed(records) if r.key_id == 1 and r.status >= 400]
    assert [r.request_id for r in pages] == wanted
    ids = [r.id for r in pages]
    assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    ok = await rollups.recent(limit=1000, model="pro", provider="openai", status="ok")
    assert [r.request_id for r in ok] == [
        r.request_id for r in reversed(records)
        if r.model == "pro" and r.provider == "openai" and r.status < 400]


async def test_recent_refuses_bad_arguments(database: Database) -> None:
    rollups = UsageRollups(database)
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
            await rollups.recent(limit=limit)
    with pytest.raises(ValueError, match="status must be ok or error, not 'bad'"):
        await rollups.recent(limit=1, status="bad")  # type: ignore[arg-type]
