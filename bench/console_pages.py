"""The console's Usage and Requests pages on 1,000,000 usage records: each page's whole
handler (query, chart, template) against its query alone, in one run.

    .venv/bin/python -m bench.console_pages                   # 1,000,000 records, SQLite
    .venv/bin/python -m bench.console_pages --records 100000

The database is the one bench/console_queries.py builds (records over 60 days, rollups
back-filled by the migration). The pages are called as the console's routes call them, with a
signed-in session; the "now" of the Usage page is the end of the generated data.

Medians of several runs after one warm-up. Bounds asserted here (not in a unit test): the
Usage page for a month within USAGE_PAGE_BOUND_MS, each Requests page within
REQUESTS_PAGE_BOUND_MS. Exit status 1 on a missed bound or a page that is not a 200.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.console_queries import END, build, median_ms
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from cometgate.console.requests_page import PAGE_SIZE, RequestsPage
from cometgate.console.session import SessionStore
from cometgate.console.usage_pages import UsagePages
from cometgate.storage.database import Database, sqlite_url
from cometgate.storage.usage_rollups import UsageRollups

USAGE_PAGE_BOUND_MS = 100.0
REQUESTS_PAGE_BOUND_MS = 50.0


def request(path: str, query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "headers": [],
                    "query_string": query.encode(), "scheme": "http",
                    "server": ("127.0.0.1", 8080)})


async def measure(database: Database, repeats: int) -> list[str]:
    problems: list[str] = []
    rollups = UsageRollups(database)
    _, session = SessionStore().open()
    usage = UsagePages(rollups, clock=lambda: END - timedelta(microseconds=1))
    requests = RequestsPage(rollups)
    async with database.engine.connect() as conn:
        total = int((await conn.execute(text("SELECT max(id) FROM usage_records"))).scalar_one())
    deep = total - total // 4
    month = (END - timedelta(days=30), END)
    cases: list[tuple[str, float, Callable[[], Awaitable[Response]],
                      Callable[[], Awaitable[Any]]]] = []
    for group in ("model", "key", "provider"):
        cases.append((
            f"usage page, 30 days by day, by {group}", USAGE_PAGE_BOUND_MS,
            lambda g=group: usage.page(request("/console/usage",
                                               f"period=30d&group_by={g}"), session),
            lambda g=group: rollups.series(start=month[0], end=month[1], bucket="day",
                                           group_by=g)))
    cases.append((
        "requests page, newest", REQUESTS_PAGE_BOUND_MS,
        lambda: requests.page(request("/console/requests", ""), session),
        lambda: rollups.recent(limit=PAGE_SIZE + 1)))
    cases.append((
        "requests page, key 7 failures, deep", REQUESTS_PAGE_BOUND_MS,
        lambda: requests.page(request("/console/requests",
                                      f"key_id=7&status=error&before={deep}"), session),
        lambda: rollups.recent(limit=PAGE_SIZE + 1, before_id=deep, key_id=7,
                               status="error")))
    print(f"\n{'page':<42}{'page ms':>10}{'query ms':>10}{'page/query':>12}{'bound':>8}")
    for name, bound, page, query in cases:
        page_ms, response = await median_ms(page, repeats)
        query_ms, _ = await median_ms(query, repeats)
        print(f"{name:<42}{page_ms:>10.2f}{query_ms:>10.2f}{page_ms / query_ms:>11.2f}x"
              f"{bound:>8.0f}")
        if response.status_code != 200:
            problems.append(f"{name}: status {response.status_code}")
        if page_ms > bound:
            problems.append(f"{name}: {page_ms:.1f} ms > {bound} ms")
    return problems


async def run(url: str, count: int, repeats: int) -> list[str]:
    database, inserted, backfilled = await build(url, count)
    try:
        print(f"{database.dialect_name}: {count:,} records inserted in {inserted:.1f} s; "
              f"rollups back-filled in {backfilled:.1f} s")
        return await measure(database, repeats)
    finally:
        await database.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, bounds: usage page "
          f"{USAGE_PAGE_BOUND_MS} ms, requests page {REQUESTS_PAGE_BOUND_MS} ms")
    with tempfile.TemporaryDirectory(prefix="cg-console-pages-") as tmp:
        problems = asyncio.run(run(sqlite_url(Path(tmp)), args.records, args.repeats))
    for problem in problems:
        print(f"PROBLEM: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
