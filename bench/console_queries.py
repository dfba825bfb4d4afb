"""The console's queries on 1,000,000 usage records, against the same answers computed the
slow way, in one run.

    .venv/bin/python -m bench.console_queries                 # 1,000,000 records, SQLite
    .venv/bin/python -m bench.console_queries --records 100000 --postgres URL

1. Builds a fresh database: usage records spread over 60 days (50 keys, 12 models, 3
   providers, about 3% failures), bulk-inserted before migration 0011_usage_rollups, which
   then back-fills the hourly and daily rollups as it would on an existing database.
2. Usage page: a month of daily spend and tokens grouped by key, by model and by provider
   (`UsageRollups.series`), against the baseline of the same sums grouped over the raw records
   (what a console without rollups runs). The answers are compared; a mismatch is a PROBLEM.
3. Requests page: the first page (50 newest) and a deep page (a key's failures, keyset at an
   id a quarter of the way back) with `UsageRollups.recent`, against OFFSET paging to the
   same rows. Rows are compared too.

Medians of several runs after one warm-up. Bounds asserted here (not in a unit test): the
usage page for a month within USAGE_BOUND_MS, each requests page within PAGE_BOUND_MS.
Exit status 1 on a PROBLEM or a missed bound.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from cometgate.storage.database import Database, open_database, sqlite_url
from cometgate.storage.migrations import MIGRATIONS
from cometgate.storage.usage_rollups import UsagePoint, UsageRollups

USAGE_BOUND_MS = 50.0
PAGE_BOUND_MS = 20.0
PAGE_SIZE = 50
DAYS = 60
KEYS = 50
MODELS = tuple(f"model-{n:02d}" for n in range(12))
PROVIDERS = ("google", "openai", "anthropic")
END = datetime(2026, 12, 1, tzinfo=UTC)
START = END - timedelta(days=DAYS)
MONTH = (END - timedelta(days=30), END)


def record_rows(count: int) -> list[tuple[Any, ...]]:
    """Deterministic records, oldest first (ids grow with time, as in a live gateway)."""
    step = DAYS * 86400 / count
    rows = []
    for n in range(count):
        created = START + timedelta(seconds=n * step)
        model = n * 7 % len(MODELS)
        status = 429 if n % 41 == 0 else 500 if n % 67 == 0 else 200
        prompt, output = 50 + n % 900, 10 + n % 300
        rows.append((
            f"b{n:09d}", n * 31 % KEYS + 1, MODELS[model],
            PROVIDERS[(model + n % 2) % len(PROVIDERS)], "up", "gemini", n % 3 == 0, status,
            "rate_limited" if status == 429 else "transient" if status == 500 else None,
            prompt, output, 0, 0, float(Decimal(prompt * 3 + output * 11).scaleb(-9)),
            float(20 + n % 500), None, created.strftime("%Y-%m-%d %H:%M:%S.%f"),
        ))
    return rows


async def build(url: str, count: int) -> tuple[Database, float, float]:
    """The database with `count` records and their rollups; seconds to insert, to back-fill."""
    before = [m for m in MIGRATIONS if m.name != "0011_usage_rollups"]
    database = await open_database(url, migrations=before)
    rows = record_rows(count)
    columns = ("request_id, key_id, model, provider, upstream_model, dialect, stream, status, "
               "failure_class, prompt_tokens, output_tokens, thoughts_tokens, cached_tokens, "
               "cost_usd, latency_ms, ttfb_ms, created_at")
    started = time.perf_counter()
    async with database.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        if database.dialect_name == "sqlite":
            await raw.driver_connection.executemany(  # type: ignore[union-attr]
                f"INSERT INTO usage_records ({columns}) VALUES ({', '.join('?' * 17)})", rows)
        else:
            pg_rows = [(*r[:16], datetime.fromisoformat(r[16]).replace(tzinfo=UTC))
                       for r in rows]
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "usage_records", records=pg_rows, columns=columns.split(", "))
    inserted = time.perf_counter() - started
    await database.aclose()
    started = time.perf_counter()
    database = await open_database(url)
    backfilled = time.perf_counter() - started
    async with database.engine.begin() as conn:
        if database.dialect_name == "sqlite":
            await conn.exec_driver_sql("ANALYZE")
        else:
            await conn.exec_driver_sql("ANALYZE usage_records")
    return database, inserted, backfilled


def baseline_usage_sql(group: str, dialect: str) -> str:
    day = ("date(created_at)" if dialect == "sqlite"
           else "CAST(timezone('UTC', created_at) AS DATE)")
    cost = ("SUM(CAST(ROUND(cost_usd * 1e9) AS INTEGER))" if dialect == "sqlite"
            else "CAST(SUM(cost_usd) * 1e9 AS BIGINT)")
    return (f"SELECT {day} AS d, {group}, COUNT(*), "
            "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), "
            f"SUM(output_tokens), {cost} FROM usage_records "
            "WHERE created_at >= :start AND created_at < :end "
            f"GROUP BY d, {group} ORDER BY d, {group}")


async def baseline_usage(database: Database, group: str) -> list[tuple[Any, ...]]:
    column = {"key": "key_id", "model": "model", "provider": "COALESCE(provider, '')"}[group]
    params: dict[str, Any] = {"start": MONTH[0], "end": MONTH[1]}
    if database.dialect_name == "sqlite":
        params = {k: v.strftime("%Y-%m-%d %H:%M:%S.%f") for k, v in params.items()}
    async with database.engine.connect() as conn:
        rows = (await conn.execute(text(baseline_usage_sql(column, database.dialect_name)),
                                   params)).all()
    return [(str(d), str(g), int(r), int(e), int(p), int(o), int(c))
            for d, g, r, e, p, o, c in rows]


def comparable(points: list[UsagePoint]) -> list[tuple[Any, ...]]:
    return [(p.bucket_start.date().isoformat(), p.group, p.requests, p.errors,
             p.prompt_tokens, p.output_tokens, int(p.cost_usd.scaleb(9))) for p in points]


async def offset_page(database: Database, where: str, offset: int,
                      params: dict[str, Any]) -> list[str]:
    query = (f"SELECT request_id FROM usage_records {where} ORDER BY created_at DESC "
             f"LIMIT {PAGE_SIZE} OFFSET {offset}")
    async with database.engine.connect() as conn:
        return list((await conn.execute(text(query), params)).scalars())


async def median_ms(run: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, Any]:
    result = await run()  # warm-up (and the answer to compare)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


async def measure(database: Database, repeats: int) -> list[str]:
    """Prints the figures; returns the problems found."""
    problems: list[str] = []
    rollups = UsageRollups(database)
    print(f"\n{'query':<44}{'rollups/keyset ms':>18}{'baseline ms':>13}{'ratio':>8}")
    for group in ("key", "model", "provider"):
        async def fast(group: str = group) -> list[UsagePoint]:
            return await rollups.series(start=MONTH[0], end=MONTH[1], bucket="day",
                                        group_by=group)  # type: ignore[arg-type]

        async def slow(group: str = group) -> list[tuple[Any, ...]]:
            return await baseline_usage(database, group)

        fast_ms, points = await median_ms(fast, repeats)
        slow_ms, rows = await median_ms(slow, max(3, repeats // 4))
        print(f"{'usage, a month by day, by ' + group:<44}{fast_ms:>18.2f}{slow_ms:>13.1f}"
              f"{slow_ms / fast_ms:>7.1f}x")
        if comparable(points) != rows:
            problems.append(f"usage by {group}: the rollups disagree with the records")
        if fast_ms > USAGE_BOUND_MS:
            problems.append(f"usage by {group}: {fast_ms:.1f} ms > {USAGE_BOUND_MS} ms")
    async with database.engine.connect() as conn:
        total = int((await conn.execute(text("SELECT max(id) FROM usage_records"))).scalar_one())
    deep_id = total - total // 4
    pages: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]] = [
        ("requests, first page", lambda: rollups.recent(limit=PAGE_SIZE),
         lambda: offset_page(database, "", 0, {})),
    ]
    # The deep page's offset: how many of the key's failures are newer than deep_id.
    async with database.engine.connect() as conn:
        skipped = int((await conn.execute(text(
            "SELECT count(*) FROM usage_records WHERE key_id = 7 AND status >= 400 "
            "AND id >= :id"), {"id": deep_id})).scalar_one())
    pages.append((
        "requests, key 7 failures, deep keyset page",
        lambda: rollups.recent(limit=PAGE_SIZE, before_id=deep_id, key_id=7, status="error"),
        lambda: offset_page(database, "WHERE key_id = 7 AND status >= 400", skipped, {})))
    unfiltered_skip = total - deep_id + 1
    pages.append((
        "requests, all, deep keyset page",
        lambda: rollups.recent(limit=PAGE_SIZE, before_id=deep_id),
        lambda: offset_page(database, "", unfiltered_skip, {})))
    for name, fast_page, slow_page in pages:
        fast_ms, records = await median_ms(fast_page, repeats)
        slow_ms, ids = await median_ms(slow_page, max(3, repeats // 4))
        print(f"{name:<44}{fast_ms:>18.2f}{slow_ms:>13.1f}{slow_ms / fast_ms:>7.1f}x")
        if [r.request_id for r in records] != ids or len(ids) != PAGE_SIZE:
            problems.append(f"{name}: keyset and offset paging disagree")
        if fast_ms > PAGE_BOUND_MS:
            problems.append(f"{name}: {fast_ms:.1f} ms > {PAGE_BOUND_MS} ms")
    return problems


async def run(url: str, count: int, repeats: int) -> list[str]:
    database, inserted, backfilled = await build(url, count)
    try:
        print(f"{database.dialect_name}: {count:,} records inserted in {inserted:.1f} s; "
              f"migration 0011 (rollups back-filled) in {backfilled:.1f} s")
        async with database.engine.connect() as conn:
            for table in ("usage_rollups_hour", "usage_rollups_day"):
                rows = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                print(f"  {table}: {rows:,} rows")
        return await measure(database, repeats)
    finally:
        await database.aclose()


async def fresh_postgres(base_url: str, count: int, repeats: int) -> list[str]:
    from tests.unit.storage.conftest import fresh_postgres_schema_url

    problems: list[str] = []
    async for url in fresh_postgres_schema_url(base_url):
        problems = await run(url, count, repeats)
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server "
                        "(in a fresh schema, dropped after)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, "
          f"bounds: usage {USAGE_BOUND_MS} ms, requests page {PAGE_BOUND_MS} ms")
    with tempfile.TemporaryDirectory(prefix="cg-console-bench-") as tmp:
        problems = asyncio.run(run(sqlite_url(Path(tmp)), args.records, args.repeats))
    if args.postgres:
        problems += asyncio.run(fresh_postgres(args.postgres, args.records, args.repeats))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
