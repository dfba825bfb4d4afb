"""Usage queries: totals per key, model and UTC day, per-key sums, records and CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from cometgate.storage.database import Database
from cometgate.storage.usage import UsageQueries, UsageRecord, UsageTotals
from cometgate.storage.usage_writer import UsageWriter

DAY1 = datetime(2025, 3, 1, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
PLUS_TWO = timezone(timedelta(hours=2))


def usage_record(request_id: str, **overrides: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "request_id": request_id, "key_id": 1, "model": "flash", "provider": "google",
        "upstream_model": "gemini-2.5-flash", "dialect": "gemini", "stream": False,
        "status": 200, "failure_class": None, "prompt_tokens": 0, "output_tokens": 0,
        "thoughts_tokens": 0, "cached_tokens": 0, "cost_usd": Decimal(0),
        "latency_ms": 1.0, "ttfb_ms": None, "created_at": DAY1,
    }
    fields.update(overrides)
    return UsageRecord(**fields)


# Key 1: two flash requests on day 1 (one at 23:30 UTC, given in UTC+2 as 01:30 of day 2) and a
# failed pro request on day 2. Key 2: one flash request on day 2.
SAMPLE = (
    usage_record("a", created_at=DAY1 + timedelta(hours=9), prompt_tokens=100, output_tokens=20,
                 thoughts_tokens=5, cached_tokens=40, cost_usd=Decimal("0.000150000")),
    usage_record("b", created_at=datetime(2025, 3, 2, 1, 30, tzinfo=PLUS_TWO), prompt_tokens=10,
                 output_tokens=2, cost_usd=Decimal("0.000000001"), stream=True),
    usage_record("c", model="pro", created_at=DAY2 + timedelta(hours=1), status=429,
                 provider=None, upstream_model=None, failure_class="rate_limited"),
    usage_record("d", key_id=2, created_at=DAY2 + timedelta(hours=2), prompt_tokens=7,
                 output_tokens=3, cost_usd=Decimal("0.25")),
)


@pytest.fixture
async def queries(database: Database) -> AsyncIterator[UsageQueries]:
    writer = UsageWriter(database)
    writer.start()
    try:
        for record in SAMPLE:
            await writer.record(record)
    finally:
        await writer.aclose()
    yield UsageQueries(database)


async def test_totals_per_key(queries: UsageQueries) -> None:
    assert await queries.totals("key") == [
        UsageTotals(3, 110, 22, 5, 40, Decimal("0.000150001"), key_id=1),
        UsageTotals(1, 7, 3, 0, 0, Decimal("0.25"), key_id=2),
    ]


async def test_totals_per_model(queries: UsageQueries) -> None:
    totals = await queries.totals("model")
    assert [(t.model, t.requests, t.total_tokens, t.cost_usd) for t in totals] == [
        ("flash", 3, 147, Decimal("0.250150001")), ("pro", 1, 0, Decimal(0))]
    assert all(t.key_id is None and t.day is None for t in totals)


async def test_totals_per_day_use_utc_days(queries: UsageQueries) -> None:
    totals = await queries.totals("day")
    assert [(t.day, t.requests, t.cost_usd) for t in totals] == [
        (date(2025, 3, 1), 2, Decimal("0.000150001")),  # "b" was 23:30 UTC on March 1st
        (date(2025, 3, 2), 2, Decimal("0.25")),
    ]


async def test_totals_filtered(queries: UsageQueries) -> None:
    by_day = await queries.totals("day", key_id=1, model="flash")
    assert [(t.day, t.requests) for t in by_day] == [(date(2025, 3, 1), 2)]
    # half-open bounds: `until` excludes, `since` includes
    window = await queries.totals("key", since=DAY2 + timedelta(hours=1),
                                  until=DAY2 + timedelta(hours=2))
    assert [(t.key_id, t.requests) for t in window] == [(1, 1)]
    assert await queries.totals("model", key_id=99) == []


async def test_per_key_sums_for_limits_and_balance(queries: UsageQueries) -> None:
    assert await queries.spent(1) == Decimal("0.000150001")
    assert await queries.spent(1, DAY2) == Decimal(0)
    assert await queries.spent(2, DAY2) == Decimal("0.25")
    assert await queries.requests_since(1, DAY1) == 3
    assert await queries.requests_since(1, DAY2) == 1
    assert await queries.tokens_since(1, DAY1) == 137  # 125 + 12, cached tokens not again
    nothing = await queries.key_totals(42)
    assert nothing == UsageTotals(0, 0, 0, 0, 0, Decimal(0), key_id=42)


async def test_cost_sums_are_exact(database: Database) -> None:
    # Summed in binary floating point, ten of these come to 9999999.999999989.
    cost = Decimal("999999.999999999")
    writer = UsageWriter(database)
    writer.start()
    for n in range(10):
        await writer.record(usage_record(f"big{n}", key_id=5, cost_usd=cost))
    await writer.aclose()
    queries = UsageQueries(database)
    assert await queries.spent(5) == Decimal("9999999.999999990")
    assert [r.cost_usd for r in await queries.records(key_id=5)] == [cost] * 10


async def test_records_come_back_oldest_first_and_equal(queries: UsageQueries) -> None:
    found = await queries.records()
    assert [r.request_id for r in found] == ["a", "b", "c", "d"]
    assert found[0] == SAMPLE[0]
    assert found[1].created_at == SAMPLE[1].created_at and found[1].created_at.tzinfo is UTC
    assert [r.request_id for r in await queries.records(model="flash", limit=2)] == ["a", "b"]


async def test_csv_of_records(queries: UsageQueries) -> None:
    text = await queries.csv(key_id=1)
    assert text.endswith("\r\n") and "\r\n" in text.splitlines(keepends=True)[0]
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["request_id"] for row in rows] == ["a", "b", "c"]
    assert rows[1]["cost_usd"] == "0.000000001"  # plain notation, never 1E-9
    assert rows[1]["stream"] == "true" and rows[0]["stream"] == "false"
    assert rows[1]["created_at"] == "2025-03-01T23:30:00+00:00"
    assert rows[2]["provider"] == "" and rows[2]["failure_class"] == "rate_limited"


async def test_csv_of_totals(queries: UsageQueries) -> None:
    text = await queries.csv("model")
    lines = text.split("\r\n")
    assert lines[0] == ("key_id,model,day,requests,prompt_tokens,output_tokens,thoughts_tokens,"
                        "cached_tokens,total_tokens,cost_usd")
    assert lines[1] == ",flash,,3,117,25,5,40,147,0.250150001"
    assert lines[2:] == [",pro,,1,0,0,0,0,0,0", ""]


async def test_csv_quotes_what_needs_quoting(database: Database) -> None:
    writer = UsageWriter(database)
    writer.start()
    await writer.record(usage_record("q", model='odd, "quoted"\nmodel'))
    await writer.aclose()
    text = await UsageQueries(database).csv("model")
    assert '"odd, ""quoted""\nmodel"' in text
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["model"] == 'odd, "quoted"\nmodel'


async def test_empty_results(database: Database) -> None:
    queries = UsageQueries(database)
    assert await queries.totals("day") == []
    assert await queries.records() == []
    assert (await queries.csv()).count("\r\n") == 1  # the header alone
    assert await queries.spent(1) == Decimal(0)


async def test_unknown_grouping_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="group_by must be one of key, model, day"):
        await UsageQueries(database).totals("week")  # type: ignore[arg-type]
