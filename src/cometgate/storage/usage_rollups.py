"""Hourly and daily sums of the usage records, and writing records together with them.

Invariant: the rollups always equal the sums of the records they cover. `insert_records` is
the one way records are written (the group-commit writer, and so journal recovery): it inserts
the records and adds them to their rollup rows in the same transaction, so both commit or
neither does. A record refused for a duplicate request_id (recovery replaying what a crashed
process had already committed) rolls its rollup update back with it: nothing counts twice.

Buckets are UTC: an hour bucket starts on the hour, a day bucket at 00:00 UTC. The rollup of a
request nobody answered has provider "" (a key column cannot be NULL).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.schema import usage_records, usage_rollups_day, usage_rollups_hour
from cometgate.storage.usage import COST_SCALE, RECORD_FIELDS, UsageRecord, record_from_row

ROLLUP_KEY = ("bucket_start", "key_id", "model", "provider")
ROLLUP_SUMS = ("requests", "errors", "prompt_tokens", "output_tokens", "thoughts_tokens",
               "cached_tokens", "cost_nanos", "latency_ms_sum")
ERROR_STATUS = 400  # a record at or above this status counts as an error


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def cost_nanos(cost: Decimal) -> int:
    """Billionths of a dollar, rounded half away from zero as the databases round NUMERIC."""
    return int((cost * _NANOS_PER_DOLLAR).to_integral_value(rounding=ROUND_HALF_UP))


_NANOS_PER_DOLLAR = Decimal(10) ** COST_SCALE
_Group = tuple[datetime, int, str, str]


def rollup_rows(records: Iterable[UsageRecord]) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """The hourly and the daily rollup rows of `records`: one per bucket, key, model and
    provider, holding their sums (in ROLLUP_SUMS order). One pass: it runs on every batch."""
    hourly: dict[_Group, list[Any]] = {}
    daily: dict[_Group, list[Any]] = {}
    for record in records:
        # UTC first: a record may carry another zone, buckets are UTC hours and days.
        hour = hour_of(record.created_at.astimezone(UTC))
        provider = record.provider or ""
        values = (1, 1 if record.status >= ERROR_STATUS else 0, record.prompt_tokens,
                  record.output_tokens, record.thoughts_tokens, record.cached_tokens,
                  cost_nanos(record.cost_usd), record.latency_ms)
        for groups, start in ((hourly, hour), (daily, hour.replace(hour=0))):
            group = (start, record.key_id, record.model, provider)
            sums = groups.get(group)
            if sums is None:
                groups[group] = list(values)
            else:
                for index, value in enumerate(values):
                    sums[index] += value
    return _as_rows(hourly), _as_rows(daily)


def _as_rows(groups: dict[_Group, list[Any]]) -> list[dict[str, Any]]:
    return [{**dict(zip(ROLLUP_KEY, group, strict=True)),
             **dict(zip(ROLLUP_SUMS, sums, strict=True))} for group, sums in groups.items()]


def insert_records(conn: Connection, records: Sequence[UsageRecord]) -> None:
    """Insert `records` and add them to their rollups, inside the caller's transaction."""
    conn.execute(insert(usage_records), [record.as_row() for record in records])
    upsert_rollups(conn, *rollup_rows(records))


def upsert_rollups(conn: Connection, hourly: list[dict[str, Any]],
                   daily: list[dict[str, Any]]) -> None:
    """Add rollup rows (`rollup_rows`) to their buckets, inside the caller's transaction."""
    conn.execute(_upsert(False, conn.dialect.name), hourly)
    conn.execute(_upsert(True, conn.dialect.name), daily)


def _upsert(daily: bool, dialect: str) -> Any:
    try:
        return _UPSERTS[daily, dialect]
    except KeyError:
        raise ValueError(f"no rollup upsert for the {dialect} dialect") from None


def _built_upsert(daily: bool, dialect: str) -> Any:
    """INSERT … ON CONFLICT (the bucket's key) DO UPDATE SET each sum = sum + the new one;
    SQLite and PostgreSQL spell it the same."""
    table = usage_rollups_day if daily else usage_rollups_hour
    if dialect == "sqlite":
        statement: Any = sqlite.insert(table)
    elif dialect == "postgresql":
        statement = postgresql.insert(table)
    else:
        raise ValueError(f"no rollup upsert for the {dialect} dialect")
    return statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in ROLLUP_KEY],
        set_={name: table.c[name] + statement.excluded[name] for name in ROLLUP_SUMS},
    )


# Built once at import, never changed: building one costs more than running it (about 0.6 ms,
# on every batch of the writer).
_UPSERTS: Mapping[tuple[bool, str], Any] = MappingProxyType({
    (daily, dialect): _built_upsert(daily, dialect)
    for daily in (False, True) for dialect in ("sqlite", "postgresql")})

Bucket = Literal["hour", "day"]
SeriesGroup = Literal["key", "model", "provider"]
RecordStatus = Literal["ok", "error"]
MAX_RECENT = 1000  # the most records one page of `recent` returns


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """The sums of one group (a key id as text, a model, a provider; "" for requests nobody
    answered) over one bucket."""

    bucket_start: datetime
    group: str
    requests: int
    errors: int
    prompt_tokens: int
    output_tokens: int
    cost_usd: Decimal
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    latency_ms_sum: float = 0.0


class UsageRollups:
    """What the console reads: usage over time from the rollups only (never the records, so
    a month costs the same with a thousand records or a billion), and the recent records a
    page at a time, newest first, by id (keyset paging: a deep page costs what the first
    does)."""

    def __init__(
        self, database: Database, *, before_read: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """`before_read`: awaited before every query (UsageQueries' read-your-writes)."""
        self._database = database
        self._before_read = before_read

    async def series(
        self,
        *,
        start: datetime,
        end: datetime,
        bucket: Bucket,
        group_by: SeriesGroup,
        key_id: int | None = None,
        model: str | None = None,
        provider: str | None = None,
    ) -> list[UsagePoint]:
        """One point per bucket starting in [start, end) and group, ordered by both."""
        _check_aware(start=start, end=end)
        table = _BUCKET_TABLES.get(bucket)
        if table is None:
            raise ValueError(f"bucket must be hour or day, not {bucket!r}")
        if group_by not in _SERIES_GROUPS:
            raise ValueError(f"group_by must be key, model or provider, not {group_by!r}")
        group = table.c[_SERIES_GROUPS[group_by]]
        sums = [func.sum(table.c[name]) for name in ROLLUP_SUMS]
        query = (select(table.c.bucket_start, group, *sums)
                 .where(table.c.bucket_start >= start, table.c.bucket_start < end))
        for name, value in (("key_id", key_id), ("model", model), ("provider", provider)):
            if value is not None:
                query = query.where(table.c[name] == value)
        query = query.group_by(table.c.bucket_start, group).order_by(table.c.bucket_start, group)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_point(row) for row in rows]

    async def recent(
        self,
        *,
        limit: int,
        before_id: int | None = None,
        key_id: int | None = None,
        model: str | None = None,
        provider: str | None = None,
        status: RecordStatus | None = None,
    ) -> list[UsageRecord]:
        """Up to `limit` records newest first (by id), each with its `id`; the next page is
        `before_id=` the last one's id. Filters combine (and)."""
        if not 1 <= limit <= MAX_RECENT:
            raise ValueError(f"limit must be between 1 and {MAX_RECENT}")
        u = usage_records.c
        query = select(u.id, *(u[name] for name in RECORD_FIELDS))
        for name, value in (("key_id", key_id), ("model", model), ("provider", provider)):
            if value is not None:
                query = query.where(u[name] == value)
        if before_id is not None:
            query = query.where(u.id < before_id)
        if status == "error":
            query = query.where(u.status >= ERROR_STATUS)
        elif status == "ok":
            query = query.where(u.status < ERROR_STATUS)
        elif status is not None:
            raise ValueError(f"status must be ok or error, not {status!r}")
        query = query.order_by(u.id.desc()).limit(limit)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [record_from_row(row._mapping) for row in rows]

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        if self._before_read is not None:
            await self._before_read()
        async with self._database.engine.connect() as conn:
            yield conn


_BUCKET_TABLES: dict[str, Table] = {"hour": usage_rollups_hour, "day": usage_rollups_day}
_SERIES_GROUPS: dict[str, str] = {"key": "key_id", "model": "model", "provider": "provider"}


def _point(row: Any) -> UsagePoint:
    start, group, requests, errors, prompt, output, thoughts, cached, nanos, latency = row
    return UsagePoint(
        bucket_start=start, group=str(group), requests=int(requests), errors=int(errors),
        prompt_tokens=int(prompt), output_tokens=int(output),
        cost_usd=Decimal(int(nanos)).scaleb(-COST_SCALE), thoughts_tokens=int(thoughts),
        cached_tokens=int(cached), latency_ms_sum=float(latency))


def _check_aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
