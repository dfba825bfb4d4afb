"""Opening the database: engine, per-connection settings, migrations.

SQLite (through aiosqlite) is the default; PostgreSQL (through asyncpg) goes through the same
code path. What is dialect-specific: for SQLite, what a file needs before use (its directory, WAL
mode set once per open, the pragmas set on every new connection); for PostgreSQL, the driver
chosen for a bare `postgresql://` URL and the `search_path` URL parameter (below); and in
`migrations`, the advisory lock that serializes concurrent migrators on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cometgate.storage.migrations import MIGRATIONS, Migration, apply_migrations

DATABASE_FILENAME = "cometgate.db"

# Milliseconds a connection waits for another writer (a second process, or a concurrent
# migration at startup) before SQLite reports "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000
PRIVATE_FILE_MODE = 0o600

_SQLITE_ASYNC_DRIVER = "sqlite+aiosqlite"
_POSTGRES_ASYNC_DRIVER = "postgresql+asyncpg"
# "postgres" is what Heroku-style DATABASE_URLs say; SQLAlchemy knows only "postgresql".
_POSTGRES_BARE_DRIVERS = frozenset({"postgresql", "postgres"})
# asyncpg takes no libpq `options`, only a `server_settings` mapping, which a URL cannot carry;
# this parameter (spelled as asyncpg's own DSNs accept it) puts cometgate's tables in a schema.
POSTGRES_SEARCH_PATH_PARAMETER = "search_path"
_WAL_RETRY_INTERVAL_S = 0.01


class Database:
    """A database and its engine; `aclose` releases every connection.

    From `open_database` it is migrated; from `create_database`, only once `migrate` returns.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # The URL may carry a password (PostgreSQL); SQLAlchemy's repr masks it.
        return f"Database({self.engine.url!r})"


def sqlite_url(data_dir: Path) -> str:
    """The default database: `cometgate.db` inside the data directory, opened with aiosqlite."""
    url = URL.create(_SQLITE_ASYNC_DRIVER, database=str(data_dir / DATABASE_FILENAME))
    return url.render_as_string(hide_password=False)


async def open_database(url: str, *, migrations: Sequence[Migration] = MIGRATIONS) -> Database:
    """Create the database and bring its schema up to date; on failure nothing stays open."""
    database = create_database(url)
    try:
        await migrate(database, migrations)
    except BaseException:
        await database.aclose()
        raise
    return database


def create_database(url: str) -> Database:
    """The engine, not yet connected and not yet migrated: call `migrate` before use.

    For a server whose app is built synchronously and migrates in its startup hook. A bare
    `sqlite://` or `postgresql://` URL is given the async driver, since the engine is async-only.
    A PostgreSQL URL may end in `?search_path=SCHEMA`: every connection then uses that schema.
    """
    parsed = _with_async_driver(make_url(url))
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_file(parsed)
    parsed, connect_args = _postgres_server_settings(parsed)
    engine = create_async_engine(parsed, connect_args=connect_args)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", configure_sqlite_connection)
    return Database(engine)


async def migrate(database: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Prepare the file (SQLite: WAL) and apply pending migrations; returns those applied."""
    if database.dialect_name == "sqlite":
        await _use_write_ahead_log(database.engine)
    return await apply_migrations(database.engine, migrations)


def _with_async_driver(url: URL) -> URL:
    if url.drivername == "sqlite":
        return url.set(drivername=_SQLITE_ASYNC_DRIVER)
    if url.drivername in _POSTGRES_BARE_DRIVERS:
        return url.set(drivername=_POSTGRES_ASYNC_DRIVER)
    return url


def _postgres_server_settings(url: URL) -> tuple[URL, dict[str, Any]]:
    """Moves `search_path` from the URL's query into asyncpg's per-connection server settings."""
    search_path = url.query.get(POSTGRES_SEARCH_PATH_PARAMETER)
    if url.get_driver_name() != "asyncpg" or search_path is None:
        return url, {}
    if not isinstance(search_path, str) or not search_path.strip():
        raise ValueError("the search_path URL parameter must be given once, and not empty")
    stripped = url.difference_update_query([POSTGRES_SEARCH_PATH_PARAMETER])
    return stripped, {"server_settings": {"search_path": search_path}}


def _create_sqlite_file(url: URL) -> None:
    """The file (and its directory) readable by this user only: it holds key hashes, budgets and
    every caller's usage. SQLite gives its -wal and -shm files the database file's mode."""
    database = url.database
    # In-memory databases and SQLite URI filenames have no directory to create.
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            with contextlib.suppress(PermissionError):  # someone else's file: theirs to mend
                path.chmod(PRIVATE_FILE_MODE)  # made by an earlier version, under the umask


def configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    """Per-connection settings: SQLite forgets both when a connection closes."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # In WAL mode, NORMAL writes each commit to the log before returning but fsyncs only at
        # checkpoints: a commit survives a crash (kill -9) of the process, and the fsync that
        # FULL adds to every commit — milliseconds on ordinary disks, on the request path of
        # every usage record — buys only protection against a power loss of the machine.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


async def _use_write_ahead_log(engine: AsyncEngine) -> None:
    """Switch the file to WAL, so readers proceed while one writer commits.

    The mode is stored in the file, so once per open is enough. It is not set in the connect
    hook because switching a new file needs an exclusive lock and SQLite answers SQLITE_BUSY
    at once, without its busy handler, when another opener holds a lock; so this retries
    (asynchronously, not blocking the event loop) for up to the busy timeout.
    """
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            return
        except OperationalError as error:
            if not _is_sqlite_busy(error) or loop.time() >= give_up_at:
                raise
        await asyncio.sleep(_WAL_RETRY_INTERVAL_S)


def _is_sqlite_busy(error: OperationalError) -> bool:
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
