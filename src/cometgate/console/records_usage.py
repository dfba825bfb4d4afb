"""A UsageSource read straight from the usage records (interim, until the rollups exist)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from cometgate.console.usage_source import Bucket, RecordStatus, SeriesGroup
from cometgate.storage.database import Database
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import COST_SCALE, RECORD_FIELDS


@dataclass(frozen=True, slots=True)
class RecordPoint:
    bucket_start: datetime
    group: str
    requests: int
    errors: int
    prompt_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class RecordRow:
    id: int | None
    request_id: str
    key_id: int
    model: str
    provider: str | None
    upstream_model: str | None
    dialect: str
    stream: bool
    status: int
    failure_class: str | None
    prompt_tokens: int
    output_tokens: int
    thoughts_tokens: int
    cached_tokens: int
    cost_usd: Decimal
    latency_ms: float
    ttfb_ms: float | None
    created_at: datetime
    dropped: str | None = None


class RecordsUsage:
    def __init__(self, database: Database, *,
                 before_read: Callable[[], Awaitable[None]] | None = None) -> None:
        self._database = database
        self._before_read = before_read

    async def series(
        self, *, start: datetime, end: datetime, bucket: Bucket, group_by: SeriesGroup,
        key_id: int | None = None, model: str | None = None, provider: str | None = None,
    ) -> list[RecordPoint]:
        u = usage_records.c
        query = select(u.created_at, u.key_id, u.model, u.provider, u.status, u.prompt_tokens,
                       u.output_tokens, u.cost_usd).where(u.created_at >= start,
                                                          u.created_at < end)
        query = _where(query, key_id=key_id, model=model, provider=provider)
        sums: dict[tuple[datetime, str], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for row in await self._rows(query):
            moment = row.created_at.astimezone(UTC)
            start_of = moment.replace(minute=0, second=0, microsecond=0)
            if bucket == "day":
                start_of = start_of.replace(hour=0)
            group = {"key": str(row.key_id), "model": row.model,
                     "provider": row.provider or ""}[group_by]
            total = sums[(start_of, group)]
            total[0] += 1
            total[1] += row.status >= 400
            total[2] += row.prompt_tokens
            total[3] += row.output_tokens
            total[4] += round(Decimal(row.cost_usd).scaleb(COST_SCALE))
        return [RecordPoint(when, group, values[0], values[1], values[2], values[3],
                            Decimal(values[4]).scaleb(-COST_SCALE))
                for (when, group), values in sorted(sums.items())]

    async def recent(
        self, *, limit: int, before_id: int | None = None, key_id: int | None = None,
        model: str | None = None, provider: str | None = None,
        status: RecordStatus | None = None,
    ) -> list[RecordRow]:
        u = usage_records.c
        query = select(u.id, *(u[name] for name in RECORD_FIELDS))
        query = _where(query, key_id=key_id, model=model, provider=provider)
        if before_id is not None:
            query = query.where(u.id < before_id)
        if status == "error":
            query = query.where(u.status >= 400)
        elif status == "ok":
            query = query.where(u.status < 400)
        query = query.order_by(u.id.desc()).limit(limit)
        rows = await self._rows(query)
        return [RecordRow(**{**row._mapping,
                             "cost_usd": Decimal(row.cost_usd).quantize(
                                 Decimal(1).scaleb(-COST_SCALE))}) for row in rows]

    async def _rows(self, query: Any) -> list[Any]:
        if self._before_read is not None:
            await self._before_read()
        async with self._database.engine.connect() as conn:
            return list((await conn.execute(query)).all())


def _where(query: Any, **filters: Any) -> Any:
    for name, value in filters.items():
        if value is not None:
            query = query.where(usage_records.c[name] == value)
    return query
