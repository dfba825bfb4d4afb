"""Usage records off the request's critical path, without losing one to a kill -9.

    record(r)   appends r as one line to the current journal segment (one write(2); once it
                returns the line is in the OS and survives a kill -9 of the process), then
                hands r to the batching UsageWriter in the background and returns at once
    writer      commits records in batches (it waits up to its commit budget to gather them);
                a segment is deleted once every record written to it is committed
    reserve(r)  journals a stand-in for a stream whose headers are going out (a line marked
                as a reservation): should the process die before the stream ends, the record
                a caller's stream had is this one, settled at recovery; record(final,
                settles=the reservation) ends its life
    recover()   at start, re-inserts the records of segments a previous process left behind,
                skipping those already in the database (the commit may have happened before
                the kill, the deletion not), then deletes those segments; a reservation
                becomes a record only if no record of its request was journaled or stored

So a response can go out as soon as its record is journaled: a write to the page cache, not a
database commit. Only a power loss of the machine can take journaled lines (no fsync), the
same guarantee SQLite gives with synchronous=NORMAL.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cometgate.storage.database import Database
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import RECORD_FIELDS, UsageRecord
from cometgate.storage.usage_writer import UsageWriter

log = logging.getLogger("cometgate.usage")

SEGMENT_RECORDS = 10_000  # a new segment after this many lines, so old ones can be deleted
_SUFFIX = ".jsonl"
_OPENING = ".opening"  # a segment being created, not yet locked (see _current)
_RECOVERY_LOCK = "recovery.lock"


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    written: int = 0
    pending: int = 0  # records written here and not yet committed, reservations not settled
    closed: bool = False


@dataclass(slots=True)
class Reservation:
    """A journaled stand-in for a record still to come; keeps its segment until settled."""

    segment: _Segment
    settled: bool = False


class UsageLog:
    def __init__(self, writer: UsageWriter, directory: Path) -> None:
        self._writer = writer
        self._directory = directory
        self._segment: _Segment | None = None
        self._counter = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def recover(self, database: Database) -> int:
        """Commit what earlier processes journaled but may not have committed; returns how
        many records were re-inserted."""
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Several processes share the directory under `serve --workers N`: two recovering at
        # once would both re-insert a dead one's records. One at a time; the next finds the
        # segments gone.
        lock = os.open(self._directory / _RECOVERY_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            return await self._recover_unlocked_segments(database)
        finally:
            os.close(lock)  # and with it the lock

    async def _recover_unlocked_segments(self, database: Database) -> int:
        # A segment still locked belongs to a live process sharing this directory: not ours.
        leftovers = [p for p in sorted(self._directory.glob(f"*{_SUFFIX}")) if _unlocked(p)]
        final: list[UsageRecord] = []
        reserved: list[UsageRecord] = []
        for path in leftovers:
            _read_segment(path, final, reserved)
        # A record of the request, wherever it is, wins over its reservation (first one kept).
        missing = await _not_stored(database, final + reserved)
        if missing:
            committed = asyncio.gather(*(self._writer.record(r) for r in missing))
            self._writer.hurry()  # start-up waits on these commits: no budget to wait out
            await committed
        for path in leftovers:
            path.unlink()
        if missing:
            log.warning("recovered %d usage records from the journal", len(missing))
        return len(missing)

    def record(self, record: UsageRecord, *, settles: Reservation | None = None) -> None:
        segment = self._current()
        os.write(segment.fd, orjson.dumps(_as_json(record)) + b"\n")
        segment.written += 1
        segment.pending += 1
        task = asyncio.get_running_loop().create_task(self._commit(record, segment))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if settles is not None and not settles.settled:
            # Only now: until the record's own line is written the reservation must survive.
            settles.settled = True
            self._release(settles.segment)

    def reserve(self, stand_in: UsageRecord) -> Reservation:
        """Journals `stand_in` as the record of a request that has not ended yet; it is
        committed only by a recovery that finds no record of that request."""
        segment = self._current()
        row = _as_json(stand_in)
        row[_RESERVATION] = True
        os.write(segment.fd, orjson.dumps(row) + b"\n")
        segment.written += 1
        segment.pending += 1
        return Reservation(segment)

    async def flush(self) -> None:
        """Return once every record journaled so far is committed (or has failed)."""
        if self._tasks:
            self._writer.hurry()  # a reader waits on this: the commit budget is not for it
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Wait for every journaled record to be committed (segments are then deleted)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._segment is not None:
            self._close(self._segment)

    async def _commit(self, record: UsageRecord, segment: _Segment) -> None:
        try:
            await self._writer.record(record)
        except Exception:
            # The line stays in its segment, which is then kept for recovery at next start.
            log.exception("usage record %s not committed; kept in the journal",
                          record.request_id)
            segment.pending = -1_000_000_000  # never deleted by this process
            return
        self._release(segment)

    def _release(self, segment: _Segment) -> None:
        segment.pending -= 1
        if segment.closed and segment.pending == 0:
            segment.path.unlink(missing_ok=True)

    def _current(self) -> _Segment:
        segment = self._segment
        if segment is not None and segment.written < SEGMENT_RECORDS:
            return segment
        if segment is not None:
            self._close(segment)
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._counter += 1
        name = f"{os.getpid()}-{datetime.now().strftime('%Y%m%d%H%M%S%f')}-{self._counter}"
        path = self._directory / f"{name}{_SUFFIX}"
        # Locked under a name recovery does not look at, then renamed: a sibling recovering
        # meanwhile never sees it unlocked (it would take it for a dead process's segment).
        opening = path.with_name(f"{name}{_OPENING}")
        fd = os.open(opening, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when this process ends
        opening.rename(path)
        self._segment = _Segment(path, fd)
        return self._segment

    def _close(self, segment: _Segment) -> None:
        if not segment.closed:
            os.close(segment.fd)
            segment.closed = True
        if segment.pending == 0:
            segment.path.unlink(missing_ok=True)


_FIELDS = RECORD_FIELDS  # lines journaled before `dropped` existed read as dropped=None
_RESERVATION = "reservation"  # marks a journal line as a stand-in, not a record


def _unlocked(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return True


def _as_json(record: UsageRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _FIELDS}
    row["cost_usd"] = str(record.cost_usd)  # exact, as Decimal text
    row["created_at"] = record.created_at.isoformat()
    return row


def _read_segment(path: Path, final: list[UsageRecord], reserved: list[UsageRecord]) -> None:
    """Appends the segment's records to `final`, its reservations to `reserved`."""
    for line in path.read_bytes().splitlines():
        try:
            row = orjson.loads(line)
            kept = reserved if row.pop(_RESERVATION, False) else final
            row["cost_usd"] = Decimal(row["cost_usd"])
            row["created_at"] = datetime.fromisoformat(row["created_at"])
            kept.append(UsageRecord(**row))
        except (ValueError, KeyError, TypeError, AttributeError):
            # A line cut short by the kill itself: its write never returned, so its response
            # was never sent in full.
            log.warning("skipping an unreadable line in usage journal %s", path.name)


async def _not_stored(database: Database, records: list[UsageRecord]) -> list[UsageRecord]:
    stored = await stored_request_ids(database.engine, [r.request_id for r in records])
    seen: set[str] = set()
    missing = []
    for record in records:
        if record.request_id not in stored and record.request_id not in seen:
            seen.add(record.request_id)
            missing.append(record)
    return missing


async def stored_request_ids(engine: AsyncEngine, ids: Sequence[str]) -> set[str]:
    """Which of `ids` name a committed usage record."""
    stored: set[str] = set()
    if not ids:
        return stored
    async with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            query = select(usage_records.c.request_id).where(
                usage_records.c.request_id.in_(chunk))
            stored.update((await conn.scalars(query)).all())
    return stored
