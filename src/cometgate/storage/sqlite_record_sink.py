"""Usage records into a SQLite file, from a thread of its own, without starving it of the GIL.

The insert runs on a thread so that SQLite's work (B-tree updates, the WAL write) never blocks
the event loop. But that thread needs the GIL too, and a saturated event loop gives it up only
every switch interval (5 ms): an `executemany` takes and drops the GIL once per row (binding in
Python, stepping in C), so a batch of 1,000 rows waited up to seconds for its turns, the
records meanwhile piled up in memory, and every forced hand-over stalled the loop.

So the thread gets nothing to do in Python: the loop thread converts every value with the
column types' own bind processors (the values stored are exactly those a SQLAlchemy insert
stores) and flattens them; the thread runs one multi-row INSERT per chunk of rows, whose single
step drops the GIL for all of them, then the two rollup upserts.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, create_engine, event

from cometgate.storage.database import Database, configure_sqlite_connection
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import RECORD_FIELDS, UsageRecord
from cometgate.storage.usage_rollups import rollup_rows, upsert_rollups

_COLUMNS = ", ".join(f'"{name}"' for name in RECORD_FIELDS)
_ROW_MARKS = "(" + ", ".join("?" * len(RECORD_FIELDS)) + ")"
Processor = Callable[[Any], Any] | None


class SqliteRecordSink:
    """Same table, same types, same file and per-connection settings as the rest."""

    def __init__(self, database: Database) -> None:
        url = database.engine.url.set(drivername="sqlite")
        self._engine: Engine = create_engine(url)
        event.listen(self._engine, "connect", configure_sqlite_connection)
        dialect = self._engine.dialect
        self._fields: list[tuple[str, Processor]] = [
            (name, usage_records.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in RECORD_FIELDS]
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-writer")

    async def insert(self, records: list[UsageRecord]) -> None:
        values = self._values(records)  # here: Python work belongs on the thread that has the GIL
        hourly, daily = rollup_rows(records)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._insert, len(records), values, hourly,
                                   daily)

    def _values(self, records: Sequence[UsageRecord]) -> list[Any]:
        """Every record's values in column order, one flat list, as the database stores them."""
        flat: list[Any] = []
        for record in records:
            for name, process in self._fields:
                value = getattr(record, name)
                flat.append(value if process is None else process(value))
        return flat

    def _insert(self, count: int, values: list[Any], hourly: list[dict[str, Any]],
                daily: list[dict[str, Any]]) -> None:
        width = len(RECORD_FIELDS)
        with self._engine.begin() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            per_statement = max(1, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
            for start in range(0, count, per_statement):
                rows = min(per_statement, count - start)
                conn.exec_driver_sql(
                    f"INSERT INTO usage_records ({_COLUMNS}) VALUES "
                    + ", ".join([_ROW_MARKS] * rows),
                    tuple(values[start * width:(start + rows) * width]))
            upsert_rollups(conn, hourly, daily)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._engine.dispose()
