"""The periodic sweep that deletes usage records past their retention, and hourly rollups
past theirs. Daily rollups are kept: they are small, and the console's long views read them.

Records are deleted oldest first in small batches, each its own short transaction, so the
sweep never holds the database (the record writer, the requests page) for long. Ids grow with
time, so the oldest records are the lowest ids: a batch is the lowest `batch` ids, of which
those past the cutoff go; a batch that held any record still young ends the round (a record
recovered from the journal late may sit among younger ones; a later round takes it).

Rollups are not reduced when their records go: they are the lasting account, kept longer.
Runs once at start, then every interval; a failing round is logged and the next retries.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from cometgate.storage.database import Database
from cometgate.storage.periodic import Periodic
from cometgate.storage.schema import usage_records, usage_rollups_hour

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepResult:
    records: int = 0
    hourly_rollups: int = 0


class UsageRetention:
    def __init__(
        self,
        database: Database,
        *,
        records: timedelta | None,
        hourly_rollups: timedelta | None,
        interval_seconds: float,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        """`records`, `hourly_rollups`: how long each is kept; None keeps it for ever."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._database = database
        self._records = records
        self._hourly = hourly_rollups
        self._batch = batch
        self._periodic = Periodic("usage-retention", self.sweep_once, interval_seconds)

    @property
    def active(self) -> bool:
        return self._records is not None or self._hourly is not None

    def start(self) -> None:
        if self.active:
            self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.aclose()

    async def sweep_once(self, now: datetime | None = None) -> SweepResult:
        """One round; what it deleted (nothing when it failed: logged, retried next round)."""
        now = now or datetime.now(UTC)
        try:
            records = 0 if self._records is None else await self._delete_records(
                now - self._records)
            hourly = 0 if self._hourly is None else await self._delete_hourly(now - self._hourly)
        except Exception:
            logger.exception("the usage retention sweep failed")
            return SweepResult()
        if records or hourly:
            logger.info("usage retention removed %d record(s) and %d hourly rollup(s)",
                        records, hourly)
        return SweepResult(records, hourly)

    async def _delete_records(self, cutoff: datetime) -> int:
        u = usage_records.c
        removed = 0
        while True:
            async with self._database.engine.begin() as conn:
                oldest = (await conn.execute(
                    select(u.id, u.created_at).order_by(u.id).limit(self._batch))).all()
                expired = [row_id for row_id, created in oldest if created < cutoff]
                if expired:
                    await conn.execute(delete(usage_records).where(u.id.in_(expired)))
            removed += len(expired)
            if len(expired) < self._batch:
                return removed
            await asyncio.sleep(0)  # between batches, let the request path run

    async def _delete_hourly(self, cutoff: datetime) -> int:
        async with self._database.engine.begin() as conn:
            result = await conn.execute(
                delete(usage_rollups_hour).where(usage_rollups_hour.c.bucket_start < cutoff))
        return int(result.rowcount)
