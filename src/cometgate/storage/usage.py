"""Usage records (one per request) and the queries over them.

Records are written by `usage_writer.UsageWriter`; this module defines them and reads them.

Portability (SQLite and PostgreSQL through one code path): queries are SQLAlchemy Core, and the
two aggregates whose natural SQL differs between the two are small constructs compiled per
dialect:
- `_UtcDay` — the UTC calendar day of a timestamp. SQLite stores `UtcDateTime` as UTC text, so
  `date(created_at)` is right there; PostgreSQL's `date(timestamptz)` would use the session time
  zone, so it is converted to UTC first.
- `_CostSumNanos` — the exact sum of `cost_usd` as an integer number of billionths. PostgreSQL's
  NUMERIC sums exactly. SQLite keeps NUMERIC values as 8-byte floats, whose sum drifts; each
  value is first rounded back to its integer number of billionths (exact for any single cost
  below about four million dollars) and the integers are summed exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Date, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from cometgate.storage.database import Database
from cometgate.storage.money import money_text
from cometgate.storage.schema import usage_records

GroupBy = Literal["key", "model", "day"]
GROUPS: tuple[GroupBy, ...] = ("key", "model", "day")
REQUEST_ID_MAX_LENGTH = 32
COST_SCALE = 9  # digits after the point in usage_records.cost_usd

_TEXT_LIMITS = {"model": 200, "provider": 200, "upstream_model": 200, "dialect": 16,
                "failure_class": 16, "batch_id": 40}


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One request, as the caller experienced it. Mirrors a `usage_records` row (minus `id`).

    Checked on construction, so that a record that could never be stored fails its own request
    at once instead of reaching the writer's shared transaction."""

    request_id: str
    key_id: int
    model: str  # the alias the caller asked for
    provider: str | None  # who answered; None when nobody did
    upstream_model: str | None
    dialect: str  # the caller's: gemini, openai, anthropic
    stream: bool
    # The HTTP status the caller got; for a stream that failed after it began (the caller saw
    # 200, then an error event), the code of that in-band error, so failures stay countable.
    status: int
    failure_class: str | None
    prompt_tokens: int  # includes cached tokens
    output_tokens: int
    thoughts_tokens: int
    cached_tokens: int
    cost_usd: Decimal
    latency_ms: float
    ttfb_ms: float | None
    created_at: datetime  # timezone-aware
    # Billable units beyond tokens (canonical `Usage`): the upstream's searches and the
    # gateway's own work for the answer.
    searches: int = 0
    fetched_pages: int = 0
    sandbox_seconds: float = 0.0
    images: int = 0
    batch_id: str | None = None  # the Gemini batch it ran in; None for a live call
    # What translation could not carry: the x-cometgate-dropped paths, comma-separated.
    dropped: str | None = None
    # The row's id once stored (the requests page pages by it); never written by the writer.
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 < len(self.request_id) <= REQUEST_ID_MAX_LENGTH:
            raise ValueError(f"request_id must have 1 to {REQUEST_ID_MAX_LENGTH} characters")
        for name, limit in _TEXT_LIMITS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"{name} is longer than {limit} characters")
        if min(self.prompt_tokens, self.output_tokens, self.thoughts_tokens,
               self.cached_tokens) < 0:
            raise ValueError("token counts must not be negative")
        if min(self.searches, self.fetched_pages, self.sandbox_seconds, self.images) < 0:
            raise ValueError("billable unit counts must not be negative")
        if not self.cost_usd.is_finite() or self.cost_usd < 0:
            raise ValueError(f"cost_usd must be a non-negative amount, got {self.cost_usd}")
        if self.latency_ms < 0 or (self.ttfb_ms is not None and self.ttfb_ms < 0):
            raise ValueError("latency_ms and ttfb_ms must not be negative")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RECORD_FIELDS}


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord) if f.name != "id")


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over a group of records. Exactly one of key_id, model, day is set: the group's
    value (`day` is a UTC calendar day), except for `key_totals`, which sets `key_id`."""

    requests: int
    prompt_tokens: int
    output_tokens: int
    thoughts_tokens: int
    cached_tokens: int
    cost_usd: Decimal
    key_id: int | None = None
    model: str | None = None
    day: date | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens + self.thoughts_tokens

    def counts(self) -> dict[str, int | str]:
        """The sums as JSON-ready values, without the group: what the admin API's totals and
        the balance route's usage both show."""
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "thoughts_tokens": self.thoughts_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": money_text(self.cost_usd),
        }


TOTALS_CSV_FIELDS = ("key_id", "model", "day", "requests", "prompt_tokens", "output_tokens",
                     "thoughts_tokens", "cached_tokens", "total_tokens", "cost_usd")


class UsageQueries:
    """Read-only questions about usage. Time bounds are half-open: since <= created_at < until."""

    def __init__(
        self,
        database: Database,
        *,
        before_read: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`before_read`: awaited before every query, e.g. to let this process's usage records
        still on their way to the database land first (read-your-writes)."""
        self._database = database
        self._before_read = before_read

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        if self._before_read is not None:
            await self._before_read()
        async with self._database.engine.connect() as conn:
            yield conn

    async def totals(
        self,
        group_by: GroupBy,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: int | None = None,
        model: str | None = None,
    ) -> list[UsageTotals]:
        """One row per key, model or UTC day, ordered by that group."""
        group = _group_column(group_by)
        query = _filtered(select(group.label("group"), *_sums()), since, until, key_id, model)
        query = query.group_by(group).order_by(group)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_totals(row[1:], **{_GROUP_FIELD[group_by]: _group_value(group_by, row[0])})
                for row in rows]

    async def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: int | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[UsageRecord]:
        """Records in the order they were made (oldest first)."""
        columns = [usage_records.c[name] for name in RECORD_FIELDS]
        query = _filtered(select(*columns), since, until, key_id, model)
        query = query.order_by(usage_records.c.created_at, usage_records.c.id).limit(limit)
        async with self._connect() as conn:
            rows = (await conn.execute(query)).all()
        return [record_from_row(row._mapping) for row in rows]

    async def csv(
        self,
        group_by: GroupBy | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: int | None = None,
        model: str | None = None,
    ) -> str:
        """RFC 4180 CSV (CRLF line ends, quoting where needed) with a header row: the records
        when `group_by` is None, else the totals per group."""
        if group_by is None:
            found = await self.records(since=since, until=until, key_id=key_id, model=model)
            return _csv(RECORD_FIELDS, ([_cell(getattr(r, n)) for n in RECORD_FIELDS]
                                        for r in found))
        totals = await self.totals(group_by, since=since, until=until, key_id=key_id, model=model)
        return _csv(TOTALS_CSV_FIELDS, ([_cell(getattr(t, n)) for n in TOTALS_CSV_FIELDS]
                                        for t in totals))

    async def key_totals(self, key_id: int, since: datetime | None = None) -> UsageTotals:
        """Everything one key used since a time (or ever): one aggregate query."""
        query = _filtered(select(*_sums()), since, None, key_id, None)
        async with self._connect() as conn:
            row = (await conn.execute(query)).one()
        return _totals(row, key_id=key_id)

    async def spent(self, key_id: int, since: datetime | None = None) -> Decimal:
        return (await self.key_totals(key_id, since)).cost_usd

    async def requests_since(self, key_id: int, since: datetime) -> int:
        return (await self.key_totals(key_id, since)).requests

    async def tokens_since(self, key_id: int, since: datetime) -> int:
        """Prompt, output and thought tokens (cached tokens are part of the prompt)."""
        return (await self.key_totals(key_id, since)).total_tokens


class _UtcDay(FunctionElement[date]):
    type = Date()
    inherit_cache = True
    name = "utc_day"


class _CostSumNanos(FunctionElement[int]):
    type = BigInteger()
    inherit_cache = True
    name = "cost_sum_nanos"


@compiles(_UtcDay, "sqlite")
def _utc_day_sqlite(element: _UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_UtcDay)
def _utc_day_default(element: _UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(_CostSumNanos, "sqlite")
def _cost_sum_sqlite(element: _CostSumNanos, compiler: SQLCompiler, **kw: Any) -> str:
    cost = compiler.process(element.clauses, **kw)
    return f"SUM(CAST(ROUND({cost} * 1e{COST_SCALE}) AS INTEGER))"


@compiles(_CostSumNanos)
def _cost_sum_default(element: _CostSumNanos, compiler: SQLCompiler, **kw: Any) -> str:
    cost = compiler.process(element.clauses, **kw)
    return f"CAST(SUM({cost}) * 1e{COST_SCALE} AS BIGINT)"


_GROUP_FIELD: dict[GroupBy, str] = {"key": "key_id", "model": "model", "day": "day"}


def _group_column(group_by: GroupBy) -> ColumnElement[Any]:
    if group_by == "key":
        return usage_records.c.key_id
    if group_by == "model":
        return usage_records.c.model
    if group_by == "day":
        return _UtcDay(usage_records.c.created_at)
    raise ValueError(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")


def _group_value(group_by: GroupBy, value: Any) -> Any:
    # SQLAlchemy's Date result processing already gives a date on both backends; a str can
    # only come from a driver that skipped it.
    if group_by == "day" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _sums() -> list[ColumnElement[Any]]:
    u = usage_records.c
    return [
        func.count(),
        func.coalesce(func.sum(u.prompt_tokens), 0),
        func.coalesce(func.sum(u.output_tokens), 0),
        func.coalesce(func.sum(u.thoughts_tokens), 0),
        func.coalesce(func.sum(u.cached_tokens), 0),
        _CostSumNanos(u.cost_usd),
    ]


def _filtered(
    query: Select[Any],
    since: datetime | None,
    until: datetime | None,
    key_id: int | None,
    model: str | None,
) -> Select[Any]:
    u = usage_records.c
    if since is not None:
        query = query.where(u.created_at >= since)
    if until is not None:
        query = query.where(u.created_at < until)
    if key_id is not None:
        query = query.where(u.key_id == key_id)
    if model is not None:
        query = query.where(u.model == model)
    return query


def _totals(sums: Sequence[Any], **group: Any) -> UsageTotals:
    requests, prompt, output, thoughts, cached, nanos = sums
    return UsageTotals(
        requests=int(requests),
        prompt_tokens=int(prompt),
        output_tokens=int(output),
        thoughts_tokens=int(thoughts),
        cached_tokens=int(cached),
        cost_usd=Decimal(int(nanos or 0)).scaleb(-COST_SCALE),
        **group,
    )


def record_from_row(row: Any) -> UsageRecord:
    """A record from a row of its columns (and `id`, when selected)."""
    values = dict(row)
    # SQLite hands NUMERIC back through a float; restore the stored scale exactly.
    values["cost_usd"] = Decimal(values["cost_usd"]).quantize(Decimal(1).scaleb(-COST_SCALE))
    return UsageRecord(**values)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return money_text(value)  # str() would switch to exponent notation below 1e-6
    return str(value)


def _csv(header: Sequence[str], rows: Any) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
