"""Batches handed whole to an upstream's own batch API, shared by every replica through the
database (the table `batch_upstream_jobs`, one row per such batch).

Invariants:
- A batch, its requests (state `upstream`: never claimed by the gateway's workers) and its
  job are created in one transaction, so no batch is ever left without whoever runs it.
- One replica at a time works on a job: `claim` is one conditional UPDATE (free, or its lease
  lapsed → owned until `until`), and every later write is conditional on still owning it. So
  a job is submitted by one replica, and its results are settled once: `settle` moves only
  requests still in state `upstream`, in the same transaction that closes the job.
- The upstream's id is stored as soon as the upstream answered the submission: a restarted or
  other replica polls that job and never submits it again. (A replica dying between the
  upstream's answer and that write leaves a job the upstream runs unasked; the batch is then
  submitted again by the next claimer.)
- A job that falls back gives its requests to the gateway's workers (state `pending`), which
  run them as they run any batch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, or_, select, update

from cometgate.storage.batches import (
    ITEM_PENDING,
    ITEM_UPSTREAM,
    Batch,
    NewItem,
    end_batch,
    end_if_done,
    insert_batch,
)
from cometgate.storage.database import Database
from cometgate.storage.schema import batch_items, batch_upstream_jobs, batches
from cometgate.storage.usage_log import stored_request_ids

JOB_SUBMITTING = "submitting"
JOB_RUNNING = "running"
JOB_FALLBACK = "fallback"
JOB_DONE = "done"
JOB_OPEN = (JOB_SUBMITTING, JOB_RUNNING)


@dataclass(frozen=True, slots=True)
class UpstreamJob:
    batch_id: str
    provider: str
    kind: str
    upstream_model: str
    upstream_id: str | None
    state: str
    stop: str | None  # "cancelled" | "expired": the upstream job is to be cancelled
    stop_sent: bool


@dataclass(frozen=True, slots=True)
class JobItem:
    """One request of a job's batch, as the upstream's batch is built from it."""

    position: int
    request: dict[str, Any]  # the caller's GenerateContentRequest
    state: str


@dataclass(frozen=True, slots=True)
class SettledItem:
    position: int
    state: str  # ITEM_SUCCEEDED | ITEM_FAILED | ITEM_CANCELLED | ITEM_EXPIRED
    result: dict[str, Any] | None  # {"response"} or {"error"}; None for an unrun one


class UpstreamJobStore:
    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def create(self, batch: Batch, items: Sequence[NewItem], *, provider: str,
                     kind: str, upstream_model: str) -> None:
        async with self._engine.begin() as conn:
            await insert_batch(conn, batch, items, ITEM_UPSTREAM)
            await conn.execute(insert(batch_upstream_jobs).values(
                batch_id=batch.id, provider=provider, kind=kind,
                upstream_model=upstream_model, upstream_id=None, state=JOB_SUBMITTING,
                stop=None, stop_sent=False, owner=None, lease_until=None,
                next_poll_at=batch.created_at, note=None, created_at=batch.created_at,
                updated_at=batch.created_at))

    async def recorded(self, request_ids: Sequence[str]) -> set[str]:
        """Which of a batch's requests already have their usage record: settling again after
        a crash records only the others."""
        return await stored_request_ids(self._engine, request_ids)

    async def get(self, batch_id: str) -> UpstreamJob | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(batch_upstream_jobs).where(
                batch_upstream_jobs.c.batch_id == batch_id))).first()
        return None if row is None else _job(row._mapping)

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Open jobs whose next poll has come and that nobody holds, oldest poll first."""
        query = (select(batch_upstream_jobs.c.batch_id)
                 .where(batch_upstream_jobs.c.state.in_(JOB_OPEN),
                        batch_upstream_jobs.c.next_poll_at <= now, _free(now))
                 .order_by(batch_upstream_jobs.c.next_poll_at).limit(limit))
        async with self._engine.connect() as conn:
            return [str(ident) for (ident,) in (await conn.execute(query)).all()]

    async def claim(self, batch_id: str, owner: str, until: datetime, now: datetime
                    ) -> UpstreamJob | None:
        async with self._engine.begin() as conn:
            taken = await conn.execute(update(batch_upstream_jobs).where(
                batch_upstream_jobs.c.batch_id == batch_id,
                batch_upstream_jobs.c.state.in_(JOB_OPEN), _free(now),
            ).values(owner=owner, lease_until=until))
            if taken.rowcount != 1:
                return None
            row = (await conn.execute(select(batch_upstream_jobs).where(
                batch_upstream_jobs.c.batch_id == batch_id))).first()
        return None if row is None else _job(row._mapping)

    async def renew(self, batch_id: str, owner: str, until: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(batch_upstream_jobs).where(
                *_owned(batch_id, owner)).values(lease_until=until))

    async def release(self, batch_id: str, owner: str, next_poll_at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(batch_upstream_jobs).where(*_owned(batch_id, owner))
                               .values(owner=None, lease_until=None, next_poll_at=next_poll_at))

    async def items(self, batch_id: str) -> list[JobItem]:
        query = (select(batch_items.c.position, batch_items.c.request, batch_items.c.state)
                 .where(batch_items.c.batch_id == batch_id).order_by(batch_items.c.position))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [JobItem(row.position, orjson.loads(row.request), row.state) for row in rows]

    async def batch(self, batch_id: str) -> Batch | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(batches).where(batches.c.id == batch_id))).first()
        if row is None:
            return None
        return Batch(**{name: row._mapping[name] for name in Batch.__dataclass_fields__})

    async def submitted(self, batch_id: str, owner: str, upstream_id: str, now: datetime
                        ) -> bool:
        async with self._engine.begin() as conn:
            done = await conn.execute(update(batch_upstream_jobs).where(
                *_owned(batch_id, owner)).values(upstream_id=upstream_id, state=JOB_RUNNING,
                                                 updated_at=now))
            await conn.execute(update(batches).where(
                batches.c.id == batch_id, batches.c.state == "BATCH_STATE_PENDING",
            ).values(state="BATCH_STATE_RUNNING", updated_at=now))
        return done.rowcount == 1

    async def stop(self, batch_id: str, reason: str, now: datetime) -> bool:
        """Ask for the open job of the batch to be cancelled upstream; whether it has one."""
        async with self._engine.begin() as conn:
            asked = await conn.execute(update(batch_upstream_jobs).where(
                batch_upstream_jobs.c.batch_id == batch_id,
                batch_upstream_jobs.c.state.in_(JOB_OPEN),
                batch_upstream_jobs.c.stop.is_(None),
            ).values(stop=reason, next_poll_at=now))
        return asked.rowcount == 1

    async def stop_sent(self, batch_id: str, owner: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(batch_upstream_jobs).where(*_owned(batch_id, owner))
                               .values(stop_sent=True))

    async def fall_back(self, batch_id: str, owner: str, note: str, now: datetime) -> bool:
        """The gateway's workers run the batch instead; `note` says why."""
        async with self._engine.begin() as conn:
            done = await conn.execute(update(batch_upstream_jobs).where(
                *_owned(batch_id, owner)).values(state=JOB_FALLBACK, note=note, owner=None,
                                                 lease_until=None, updated_at=now))
            if done.rowcount != 1:
                return False
            await conn.execute(update(batch_items).where(
                batch_items.c.batch_id == batch_id, batch_items.c.state == ITEM_UPSTREAM,
            ).values(state=ITEM_PENDING))
        return True

    async def settle(self, batch_id: str, owner: str, settled: Sequence[SettledItem], *,
                     end_state: str | None, now: datetime, note: str | None = None) -> bool:
        """Store the upstream job's results and close it; then end the batch — in
        `end_state` if given (FAILED, CANCELLED, EXPIRED), else as its requests say.
        Whether this owner still held the job (nothing is written otherwise)."""
        async with self._engine.begin() as conn:
            done = await conn.execute(update(batch_upstream_jobs).where(
                *_owned(batch_id, owner)).values(state=JOB_DONE, owner=None, lease_until=None,
                                                 note=note, updated_at=now))
            if done.rowcount != 1:
                return False
            for item in settled:
                await conn.execute(update(batch_items).where(
                    batch_items.c.batch_id == batch_id, batch_items.c.position == item.position,
                    batch_items.c.state == ITEM_UPSTREAM,
                ).values(state=item.state,
                         result=None if item.result is None else orjson.dumps(
                             item.result).decode()))
            if end_state is not None:
                await end_batch(conn, batch_id, end_state, now)
            else:
                await end_if_done(conn, batch_id, now)
        return True


def _free(now: datetime) -> Any:
    return or_(batch_upstream_jobs.c.owner.is_(None), batch_upstream_jobs.c.lease_until <= now)


def _owned(batch_id: str, owner: str) -> tuple[Any, ...]:
    return (batch_upstream_jobs.c.batch_id == batch_id, batch_upstream_jobs.c.owner == owner,
            batch_upstream_jobs.c.state.in_(JOB_OPEN))


def _job(row: Any) -> UpstreamJob:
    return UpstreamJob(row["batch_id"], row["provider"], row["kind"], row["upstream_model"],
                       row["upstream_id"], row["state"], row["stop"], bool(row["stop_sent"]))

