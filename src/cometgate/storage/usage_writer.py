"""Group commit of usage records: durable, yet one transaction for many requests.

Why: a request whose response the caller fully received must never be missing from the usage
log, even if the process is killed a moment later. So the request waits until its record is
committed. One transaction per request would make every request pay for its own commit (an
fsync on SQLite); here concurrent requests share one.

How: `record()` appends the record and a future to a queue, wakes the writer task, and awaits
the future. The writer task waits until the oldest queued record is `commit_budget` seconds old
(or the queue holds `max_batch` rows, or a reader asked for everything now: `hurry`), takes up to
`max_batch` rows, inserts them with one executemany in one transaction (which also adds them to
the hourly and daily rollups: usage_rollups.insert_records), commits, and only then resolves
every future of that batch. Under heavy load the commit itself is longer than the budget and the
records that queue meanwhile are overdue when it ends, so batches grow with the load; at moderate
rates the budget gathers the records of several requests into one commit instead of one commit
each. A budget of 0 commits at once (for callers that wait on the commit).

Failures: a row-specific error (a duplicate request_id, a value the column refuses) makes the
writer retry that batch row by row, each in its own transaction, so only the bad record fails
and the rest are committed. Any other error (the database is unreachable, locked too long) fails
every waiter of the batch with that exception; the writer itself keeps running. Records are
validated when built (`UsageRecord.__post_init__`), so most bad input never reaches a batch.

Cancellation: a caller cancelled while waiting (a client that disconnected) does not withdraw
its record; it is written with its batch.

Durability on SQLite: the database runs in WAL mode (`database.migrate` sets it) with
`synchronous = NORMAL` (set on every connection by `database`). A commit returns only after its
WAL frames are written to the file, which survives a kill -9 of the process (the guarantee
asked of usage records); only a power loss of the machine can take the last commits, which
FULL would prevent at the price of an fsync per commit on the request path. PostgreSQL: a
commit is durable once it returns (`synchronous_commit = on`, its default).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import DataError, IntegrityError

from cometgate.storage.database import Database
from cometgate.storage.sqlite_record_sink import SqliteRecordSink
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_rollups import insert_records

DEFAULT_MAX_BATCH = 1000
MAX_COMMIT_BUDGET = 10.0  # seconds; past this, records would wait in memory for no gain
# Errors that belong to one row, not to the batch or the database: retried row by row.
_ROW_ERRORS = (IntegrityError, DataError)


class UsageWriterClosedError(RuntimeError):
    """The writer is not running (not started yet, or closed): nothing can be recorded."""


@dataclass(frozen=True, slots=True)
class _Waiter:
    record: UsageRecord
    committed: asyncio.Future[None]
    queued: float  # the loop's clock when it was queued


class UsageWriter:
    """Writes usage records in batches; `record` returns once its record is committed.

    Lifecycle: `start()` inside the running event loop, `record()` any number of times,
    `aclose()` once: it writes everything queued, then stops."""

    def __init__(
        self, database: Database, *, max_batch: int = DEFAULT_MAX_BATCH,
        commit_budget: float = 0.0,
    ) -> None:
        """`commit_budget`: seconds a record may wait in the queue for others to share its
        commit (for callers that do not wait on it: the journal has made it durable)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0 <= commit_budget <= MAX_COMMIT_BUDGET:
            raise ValueError(f"commit_budget must be between 0 and {MAX_COMMIT_BUDGET} seconds")
        self._budget = commit_budget
        self._sink = _sink_for(database)
        self._max_batch = max_batch
        self._queue: list[_Waiter] = []
        self._wakeup = asyncio.Event()
        self._due = asyncio.Event()  # commit now: closing, hurried, or a full batch queued
        self._hurried = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0  # transactions committed, for tests and the benchmark

    @property
    def running(self) -> bool:
        return self._task is not None and not self._closing and not self._task.done()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the usage writer was already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-writer")

    async def record(self, record: UsageRecord) -> None:
        """Return once `record` is committed; raise what made its commit fail."""
        if not self.running:
            raise UsageWriterClosedError("the usage writer is not running")
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        self._queue.append(_Waiter(record, committed, loop.time()))
        if len(self._queue) >= self._max_batch:
            self._due.set()
        self._wakeup.set()
        await committed

    def hurry(self) -> None:
        """Commit what is queued without waiting out the budget (a reader wants it now)."""
        self._hurried = True
        self._due.set()

    async def aclose(self) -> None:
        """Write every record already queued, then stop. Safe to call more than once."""
        self._closing = True
        self._due.set()
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._sink.close()

    async def _run(self) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._queue:
                    await self._wait_budget()
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                    await self._commit(batch)
                self._hurried = False
                self._due.clear()
                if self._closing:
                    return
        finally:
            # Reached with waiters left only if this task was cancelled or failed unexpectedly.
            left, self._queue = self._queue, []
            _fail(left, UsageWriterClosedError("the usage writer stopped before writing this"))

    async def _wait_budget(self) -> None:
        """Until the oldest queued record has waited its budget, unless a commit is due."""
        if self._closing or self._hurried or len(self._queue) >= self._max_batch:
            return
        self._due.clear()
        left = self._queue[0].queued + self._budget - asyncio.get_running_loop().time()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), left)

    async def _commit(self, batch: Sequence[_Waiter]) -> None:
        try:
            await self._insert(batch)
        except _ROW_ERRORS as error:
            if len(batch) == 1:
                _fail(batch, error)
                return
            for waiter in batch:
                await self._commit((waiter,))
            return
        except Exception as error:  # the waiters own the failure; the writer carries on
            _fail(batch, error)
            return
        self.commits += 1
        for waiter in batch:
            if not waiter.committed.done():
                waiter.committed.set_result(None)

    async def _insert(self, batch: Sequence[_Waiter]) -> None:
        await self._sink.insert([waiter.record for waiter in batch])


class _Sink(Protocol):
    async def insert(self, records: list[UsageRecord]) -> None: ...

    def close(self) -> None: ...


class _EngineSink:
    """Through the async engine: right for PostgreSQL, whose driver is natively async."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, records: list[UsageRecord]) -> None:
        async with self._database.engine.begin() as conn:
            await conn.run_sync(insert_records, records)

    def close(self) -> None:
        pass


def _sink_for(database: Database) -> _Sink:
    url = database.engine.url
    on_file = url.database not in (None, "", ":memory:") and not str(url.database).startswith(
        "file:")
    if database.dialect_name == "sqlite" and on_file:
        return SqliteRecordSink(database)
    return _EngineSink(database)


def _fail(waiters: Sequence[_Waiter], error: BaseException) -> None:
    for waiter in waiters:
        if not waiter.committed.done():
            waiter.committed.set_exception(error)
