"""Stored Gemini batches and their requests, shared by every replica through the database.

Invariants:
- Every read, cancel and delete on behalf of a caller names the key that created the batch;
  another key's batch and a missing one are the same answer (None / False).
- A request is run by whoever claims it: `claim` is one conditional UPDATE (pending, or
  running with a lapsed lease → running, owned, leased), so of two workers — in one process
  or in two replicas, on SQLite or PostgreSQL — exactly one gets it. Its result is stored
  only by its owner while it still holds it (`finish` is conditional on owner and state), so
  a request is answered at most once; a lapsed lease is claimed again, so none is lost.
- A batch moves PENDING → RUNNING (its first claim) → SUCCEEDED once no request is open, or
  CANCELLED / EXPIRED if it was cancelled or expired first; each move is conditional on the
  batch still being unfinished. Cancelling (or expiry) stops the pending requests at once;
  running ones finish and keep their results, and the batch ends when the last one has.
- The clock is passed in, so leases and expiry are tested without waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.schema import batch_items, batches

PENDING = "BATCH_STATE_PENDING"
RUNNING = "BATCH_STATE_RUNNING"
SUCCEEDED = "BATCH_STATE_SUCCEEDED"
FAILED = "BATCH_STATE_FAILED"
CANCELLED = "BATCH_STATE_CANCELLED"
EXPIRED = "BATCH_STATE_EXPIRED"
UNFINISHED = (PENDING, RUNNING)

# A request's own states.
ITEM_PENDING = "pending"
ITEM_RUNNING = "running"
ITEM_SUCCEEDED = "succeeded"
ITEM_FAILED = "failed"
ITEM_CANCELLED = "cancelled"
ITEM_EXPIRED = "expired"
# Handed to an upstream's own batch API (storage/batch_upstream_jobs.py): never claimed by
# the gateway's workers, and holding its reservation until the upstream job's results came.
ITEM_UPSTREAM = "upstream"
ITEM_OPEN = (ITEM_PENDING, ITEM_RUNNING, ITEM_UPSTREAM)
ITEM_HOLDING = (ITEM_PENDING, ITEM_UPSTREAM)  # what a batch still holds of its key's budget


@dataclass(frozen=True, slots=True)
class NewItem:
    request: dict[str, Any]  # the GenerateContentRequest, as the caller sent it
    metadata: Any  # the caller's metadata (with its key), echoed with the result
    reserved_usd: Decimal


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    key_id: int
    model: str
    display_name: str | None
    state: str
    input_file: str | None
    output_file: str | None
    client_ip: str | None
    request_count: int
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ItemResult:
    position: int
    metadata: Any
    state: str
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Claimable:
    batch_id: str
    position: int
    model: str
    key_id: int


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request this worker now owns: what it needs to run it."""

    batch_id: str
    position: int
    model: str
    key_id: int
    client_ip: str | None
    request: dict[str, Any]


class BatchStore:
    def __init__(self, database: Database) -> None:
        self._engine = database.engine

    async def create(self, batch: Batch, items: Sequence[NewItem]) -> None:
        async with self._engine.begin() as conn:
            await insert_batch(conn, batch, items, ITEM_PENDING)

    async def get(self, key_id: int, batch_id: str) -> Batch | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(batches).where(
                batches.c.id == batch_id, batches.c.key_id == key_id))).first()
        return _batch(row) if row is not None else None

    async def page(self, key_id: int, offset: int, size: int) -> tuple[list[Batch], bool]:
        """The key's batches, newest first, from `offset`; and whether more follow."""
        query = (select(batches).where(batches.c.key_id == key_id)
                 .order_by(batches.c.created_at.desc(), batches.c.id.desc())
                 .offset(offset).limit(size + 1))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_batch(row) for row in rows[:size]], len(rows) > size

    async def counts(self, batch_id: str) -> dict[str, int]:
        query = (select(batch_items.c.state, func.count()).where(
            batch_items.c.batch_id == batch_id).group_by(batch_items.c.state))
        async with self._engine.connect() as conn:
            return {state: int(n) for state, n in (await conn.execute(query)).all()}

    async def results(self, batch_id: str) -> list[ItemResult]:
        query = (select(batch_items.c.position, batch_items.c.metadata, batch_items.c.state,
                        batch_items.c.result)
                 .where(batch_items.c.batch_id == batch_id).order_by(batch_items.c.position))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ItemResult(row.position, _loads(row.metadata), row.state, _loads(row.result))
                for row in rows]

    async def outstanding(self, key_id: int) -> Decimal:
        """The worst-case cost the key's unfinished batches still hold for their requests
        that have not started (a running one is reserved by its own lease)."""
        query = (select(func.coalesce(func.sum(batch_items.c.reserved_usd), 0))
                 .select_from(batch_items.join(batches, batches.c.id == batch_items.c.batch_id))
                 .where(batches.c.key_id == key_id, batches.c.state.in_(UNFINISHED),
                        batch_items.c.state.in_(ITEM_HOLDING)))
        async with self._engine.connect() as conn:
            return Decimal((await conn.execute(query)).scalar_one())

    async def held(self) -> dict[str, tuple[int, Decimal]]:
        """`outstanding`, for every unfinished batch: batch id → (key id, amount)."""
        query = (select(batches.c.id, batches.c.key_id, func.sum(batch_items.c.reserved_usd))
                 .select_from(batch_items.join(batches, batches.c.id == batch_items.c.batch_id))
                 .where(batches.c.state.in_(UNFINISHED),
                        batch_items.c.state.in_(ITEM_HOLDING))
                 .group_by(batches.c.id, batches.c.key_id))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {ident: (key_id, Decimal(amount)) for ident, key_id, amount in rows}

    async def cancel(self, key_id: int, batch_id: str, now: datetime) -> bool:
        """Whether the batch was unfinished and is now cancelled."""
        return await self._end(key_id, batch_id, ITEM_CANCELLED, now)

    async def delete(self, key_id: int, batch_id: str) -> bool:
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(batches).where(
                batches.c.id == batch_id, batches.c.key_id == key_id))
            if gone.rowcount == 0:
                return False
            await conn.execute(delete(batch_items).where(batch_items.c.batch_id == batch_id))
        return True

    async def set_output_file(self, batch_id: str, name: str) -> str:
        """Record the batch's result file unless it has one; the one it has now."""
        async with self._engine.begin() as conn:
            await conn.execute(update(batches).where(
                batches.c.id == batch_id, batches.c.output_file.is_(None),
            ).values(output_file=name))
            kept = (await conn.execute(select(batches.c.output_file).where(
                batches.c.id == batch_id))).scalar_one_or_none()
        return str(kept) if kept is not None else name

    async def claimable(self, now: datetime, limit: int, *,
                        skip_models: Sequence[str] = (), skip_keys: Sequence[int] = ()
                        ) -> list[Claimable]:
        """Requests a worker may claim now, oldest batches first; none of `skip_models` (their
        provider is busy) or of `skip_keys` (waiting out a rate limit), so that a long batch
        on a busy provider does not hide the work that could run elsewhere."""
        query = (select(batch_items.c.batch_id, batch_items.c.position, batches.c.model,
                        batches.c.key_id)
                 .select_from(batch_items.join(batches, batches.c.id == batch_items.c.batch_id))
                 .where(_live(now), _claimable(now))
                 .order_by(batches.c.created_at, batch_items.c.position).limit(limit))
        if skip_models:
            query = query.where(batches.c.model.not_in(skip_models))
        if skip_keys:
            query = query.where(batches.c.key_id.not_in(skip_keys))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Claimable(row.batch_id, row.position, row.model, row.key_id) for row in rows]

    async def claim(self, item: Claimable, owner: str, until: datetime, now: datetime
                    ) -> Claimed | None:
        async with self._engine.begin() as conn:
            taken = await conn.execute(
                update(batch_items)
                .where(batch_items.c.batch_id == item.batch_id,
                       batch_items.c.position == item.position, _claimable(now),
                       batch_items.c.batch_id.in_(select(batches.c.id).where(_live(now))))
                .values(state=ITEM_RUNNING, owner=owner, lease_until=until))
            if taken.rowcount != 1:
                return None
            await conn.execute(update(batches).where(
                batches.c.id == item.batch_id, batches.c.state == PENDING,
            ).values(state=RUNNING, updated_at=now))
            row = (await conn.execute(
                select(batch_items.c.request, batches.c.key_id, batches.c.client_ip,
                       batches.c.state)
                .select_from(batch_items.join(batches, batches.c.id == batch_items.c.batch_id))
                .where(batch_items.c.batch_id == item.batch_id,
                       batch_items.c.position == item.position))).first()
        if row is None:
            return None
        return Claimed(item.batch_id, item.position, item.model, row.key_id, row.client_ip,
                       orjson.loads(row.request))

    async def renew(self, owner: str, held: Sequence[tuple[str, int]], until: datetime) -> None:
        if not held:
            return
        async with self._engine.begin() as conn:
            for batch_id, position in held:
                await conn.execute(update(batch_items).where(
                    batch_items.c.batch_id == batch_id, batch_items.c.position == position,
                    batch_items.c.owner == owner, batch_items.c.state == ITEM_RUNNING,
                ).values(lease_until=until))

    async def release(self, owner: str, batch_id: str, position: int) -> None:
        """Give a claimed request back unrun (rate-limited, or this worker is stopping)."""
        async with self._engine.begin() as conn:
            await conn.execute(update(batch_items).where(
                batch_items.c.batch_id == batch_id, batch_items.c.position == position,
                batch_items.c.owner == owner, batch_items.c.state == ITEM_RUNNING,
            ).values(state=ITEM_PENDING, owner=None, lease_until=None))

    async def finish(self, owner: str, batch_id: str, position: int, *, succeeded: bool,
                     result: dict[str, Any], now: datetime) -> bool:
        """Store a request's result if `owner` still holds it; then end the batch if that
        was its last open request. Whether the result was stored."""
        state = ITEM_SUCCEEDED if succeeded else ITEM_FAILED
        async with self._engine.begin() as conn:
            stored = await conn.execute(update(batch_items).where(
                batch_items.c.batch_id == batch_id, batch_items.c.position == position,
                batch_items.c.owner == owner, batch_items.c.state == ITEM_RUNNING,
            ).values(state=state, owner=None, lease_until=None, result=_json(result)))
            if stored.rowcount != 1:
                return False
            await end_if_done(conn, batch_id, now)
        return True

    async def expire(self, now: datetime) -> int:
        """End every unfinished batch past its expiry; how many."""
        query = select(batches.c.id, batches.c.key_id).where(
            batches.c.state.in_(UNFINISHED), batches.c.expires_at <= now)
        async with self._engine.connect() as conn:
            due = (await conn.execute(query)).all()
        ended = 0
        for row in due:
            ended += await self._end(row.key_id, row.id, ITEM_EXPIRED, now)
        return ended

    async def _end(self, key_id: int, batch_id: str, item_state: str, now: datetime) -> bool:
        async with self._engine.begin() as conn:
            found = (await conn.execute(select(batches.c.id).where(
                batches.c.id == batch_id, batches.c.key_id == key_id,
                batches.c.state.in_(UNFINISHED)))).first()
            if found is None:
                return False
            # Running requests finish and keep their results; only unstarted ones stop.
            await conn.execute(update(batch_items).where(
                batch_items.c.batch_id == batch_id, batch_items.c.state == ITEM_PENDING,
            ).values(state=item_state))
            await end_if_done(conn, batch_id, now)
        return True


async def insert_batch(conn: AsyncConnection, batch: Batch, items: Sequence[NewItem],
                       item_state: str) -> None:
    rows = [{"batch_id": batch.id, "position": i, "request": _json(item.request),
             "metadata": None if item.metadata is None else _json(item.metadata),
             "state": item_state, "reserved_usd": item.reserved_usd}
            for i, item in enumerate(items)]
    await conn.execute(insert(batches).values(**_batch_row(batch)))
    for start in range(0, len(rows), 500):  # bounded statements for big batches
        await conn.execute(insert(batch_items), rows[start:start + 500])


async def end_batch(conn: AsyncConnection, batch_id: str, state: str, now: datetime) -> None:
    """End an unfinished batch in `state`, whatever its requests' states say (an upstream
    batch job that failed, or that was cancelled after some of its requests were answered)."""
    await conn.execute(update(batches).where(
        batches.c.id == batch_id, batches.c.state.in_(UNFINISHED),
    ).values(state=state, ended_at=now, updated_at=now))


async def end_if_done(conn: AsyncConnection, batch_id: str, now: datetime) -> None:
    """With no request left open, the batch ends: CANCELLED or EXPIRED if requests were
    stopped so, else SUCCEEDED (failed requests carry their own errors).

    The batch's row is written first: that write waits for any other transaction that wrote
    it, so two requests finishing at once (on two replicas) count one after the other — each
    counting before the other committed would leave the batch running for ever."""
    unfinished = (batches.c.id == batch_id, batches.c.state.in_(UNFINISHED))
    await conn.execute(update(batches).where(*unfinished).values(updated_at=now))
    query = (select(batch_items.c.state, func.count()).where(batch_items.c.batch_id == batch_id)
             .group_by(batch_items.c.state))
    counts = {state: int(n) for state, n in (await conn.execute(query)).all()}
    if not any(counts.get(state) for state in ITEM_OPEN):
        state = (CANCELLED if counts.get(ITEM_CANCELLED) else
                 EXPIRED if counts.get(ITEM_EXPIRED) else SUCCEEDED)
        await conn.execute(update(batches).where(*unfinished)
                           .values(state=state, ended_at=now))


def _live(now: datetime) -> Any:
    """A batch whose requests may still start: unfinished and not past its expiry."""
    return and_(batches.c.state.in_(UNFINISHED), batches.c.expires_at > now)


def _claimable(now: datetime) -> Any:
    return or_(batch_items.c.state == ITEM_PENDING,
               and_(batch_items.c.state == ITEM_RUNNING, batch_items.c.lease_until <= now))


def _batch_row(batch: Batch) -> dict[str, Any]:
    return {name: getattr(batch, name) for name in Batch.__dataclass_fields__}


def _batch(row: Row[Any]) -> Batch:
    return Batch(**{name: row._mapping[name] for name in Batch.__dataclass_fields__})


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
