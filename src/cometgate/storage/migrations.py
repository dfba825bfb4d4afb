"""Append-only schema migrations, applied in order when a database is opened.

Invariants:
- `MIGRATIONS` only ever grows at the end; a released migration is never edited or removed.
  Each migration carries its own snapshot of the DDL it runs (it does not import the live
  tables from `schema`), so later edits to the schema cannot change what it does.
- A migration is applied at most once per database. Its row in `schema_migrations` is inserted
  as the first statement of the same transaction that runs it: the primary key makes that
  insert a claim. When two processes open a new database together, the loser's insert waits
  for the winner's transaction (SQLite's write lock with busy_timeout, PostgreSQL's unique
  index), then fails; the loser rolls back, re-checks that the migration is recorded, and
  moves on. Writing first also keeps SQLite in WAL mode from failing the upgrade of a read
  transaction to a write one without waiting.
- On PostgreSQL, the ledger's creation and each migration's transaction first take a
  transaction-level advisory lock for the current schema. CREATE TABLE IF NOT EXISTS is not
  safe there when two sessions run it at once (both see no table, one fails on the catalog's
  unique index), and the same holds for the DDL of two migrations racing; the lock makes them
  take turns. It is released with the transaction, so a crashed migrator cannot leave it held.
  SQLite needs nothing of the kind: its one writer at a time already serializes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateTable

from cometgate.storage.schema import UtcDateTime, schema_migrations

# The first key of cometgate's PostgreSQL advisory locks ("cmgt" in ASCII); the second is a
# hash of the schema, so migrators of different schemas in one database do not wait on each other.
MIGRATION_LOCK_CLASS = 0x636D6774


class MigrationError(RuntimeError):
    """The database and this program disagree about which migrations exist."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One named, append-only schema change. `apply` runs inside the claiming transaction."""

    name: str
    apply: Callable[[Connection], None]


def _create_api_keys(conn: Connection) -> None:
    snapshot = MetaData()
    table = Table(
        "api_keys",
        snapshot,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(64), nullable=False),
        Column("prefix", String(11), nullable=False),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("last_used_at", UtcDateTime(), nullable=True),
        Column("revoked_at", UtcDateTime(), nullable=True),
        Index("ix_api_keys_prefix", "prefix"),
    )
    active = table.c.revoked_at.is_(None)
    Index(
        "uq_api_keys_active_name",
        table.c.name,
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    snapshot.create_all(conn, checkfirst=False)


def _add_key_translation(conn: Connection) -> None:
    # ADD COLUMN with a NULL default is instant and portable (SQLite and PostgreSQL).
    conn.exec_driver_sql("ALTER TABLE api_keys ADD COLUMN translation VARCHAR(16)")


_KEY_POLICY_COLUMNS = (
    ("owner", "VARCHAR(200)"),
    ("metadata_json", "TEXT"),
    ("expires_at", "TIMESTAMP WITH TIME ZONE"),
    ("allowed_models_json", "TEXT"),
    ("allowed_ips_json", "TEXT"),
    ("rpm", "INTEGER"),
    ("tpm", "INTEGER"),
    ("rpd", "INTEGER"),
    ("max_concurrent", "INTEGER"),
    ("budget_total_usd", "NUMERIC(18, 6)"),
    ("budget_period", "VARCHAR(8)"),
    ("budget_period_usd", "NUMERIC(18, 6)"),
    ("updated_at", "TIMESTAMP WITH TIME ZONE"),
)


def _add_key_policies(conn: Connection) -> None:
    for name, sql_type in _KEY_POLICY_COLUMNS:
        conn.exec_driver_sql(f"ALTER TABLE api_keys ADD COLUMN {name} {sql_type}")


def _create_usage_records(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "usage_records",
        snapshot,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(32), nullable=False, unique=True),
        Column("key_id", Integer, nullable=False),
        Column("model", String(200), nullable=False),
        Column("provider", String(200), nullable=True),
        Column("upstream_model", String(200), nullable=True),
        Column("dialect", String(16), nullable=False),
        Column("stream", Boolean(), nullable=False),
        Column("status", Integer, nullable=False),
        Column("failure_class", String(16), nullable=True),
        Column("prompt_tokens", Integer, nullable=False),
        Column("output_tokens", Integer, nullable=False),
        Column("thoughts_tokens", Integer, nullable=False),
        Column("cached_tokens", Integer, nullable=False),
        Column("cost_usd", Numeric(18, 9), nullable=False),
        Column("latency_ms", Float(), nullable=False),
        Column("ttfb_ms", Float(), nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Index("ix_usage_records_key_created", "key_id", "created_at"),
        Index("ix_usage_records_model_created", "model", "created_at"),
    )
    snapshot.create_all(conn, checkfirst=False)


def _add_key_allowed_passthrough(conn: Connection) -> None:
    conn.exec_driver_sql("ALTER TABLE api_keys ADD COLUMN allowed_passthrough_json TEXT")


def _create_stored_conversations(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "stored_turns",
        snapshot,
        Column("id", String(80), primary_key=True),
        Column("api", String(16), nullable=False),
        Column("key_id", Integer, nullable=False),
        Column("previous_id", String(80), nullable=True),
        Column("model", String(200), nullable=False),
        Column("status", String(16), nullable=False),
        Column("body", Text(), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
        Index("ix_stored_turns_key_created", "key_id", "created_at"),
        Index("ix_stored_turns_expires", "expires_at"),
    )
    Table(
        "stored_turn_items",
        snapshot,
        Column("turn_id", String(80), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("item_id", String(80), nullable=False),
        Column("body", Text(), nullable=False),
    )
    snapshot.create_all(conn, checkfirst=False)
    conn.exec_driver_sql("ALTER TABLE api_keys ADD COLUMN store_conversations BOOLEAN")


def _create_batches(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "batches",
        snapshot,
        Column("id", String(40), primary_key=True),
        Column("key_id", Integer, nullable=False),
        Column("model", String(200), nullable=False),
        Column("display_name", String(512), nullable=True),
        Column("state", String(32), nullable=False),
        Column("input_file", String(200), nullable=True),
        Column("output_file", String(200), nullable=True),
        Column("client_ip", String(64), nullable=True),
        Column("request_count", Integer, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("ended_at", UtcDateTime(), nullable=True),
        Column("expires_at", UtcDateTime(), nullable=False),
        Index("ix_batches_key_created", "key_id", "created_at"),
        Index("ix_batches_state", "state"),
    )
    Table(
        "batch_items",
        snapshot,
        Column("batch_id", String(40), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("request", Text(), nullable=False),
        Column("metadata", Text(), nullable=True),
        Column("state", String(16), nullable=False),
        Column("reserved_usd", Numeric(18, 9), nullable=False),
        Column("owner", String(40), nullable=True),
        Column("lease_until", UtcDateTime(), nullable=True),
        Column("result", Text(), nullable=True),
        Index("ix_batch_items_state", "state", "lease_until"),
    )
    snapshot.create_all(conn, checkfirst=False)
    conn.exec_driver_sql("ALTER TABLE usage_records ADD COLUMN batch_id VARCHAR(40)")


def _create_batch_upstream_jobs(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "batch_upstream_jobs",
        snapshot,
        Column("batch_id", String(40), primary_key=True),
        Column("provider", String(200), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("upstream_model", String(200), nullable=False),
        Column("upstream_id", String(300), nullable=True),
        Column("state", String(16), nullable=False),
        Column("stop", String(16), nullable=True),
        Column("stop_sent", Boolean(), nullable=False),
        Column("owner", String(40), nullable=True),
        Column("lease_until", UtcDateTime(), nullable=True),
        Column("next_poll_at", UtcDateTime(), nullable=False),
        Column("note", Text(), nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Index("ix_batch_upstream_jobs_state", "state", "next_poll_at"),
    )
    snapshot.create_all(conn, checkfirst=False)


def _add_usage_billable_units(conn: Connection) -> None:
    for name, sql_type in (("searches", "INTEGER"), ("fetched_pages", "INTEGER"),
                           ("sandbox_seconds", "FLOAT"), ("images", "INTEGER")):
        conn.exec_driver_sql(
            f"ALTER TABLE usage_records ADD COLUMN {name} {sql_type} NOT NULL DEFAULT 0")


def _create_gemini_files(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "gemini_files",
        snapshot,
        Column("id", String(40), primary_key=True),
        Column("key_id", Integer, nullable=False),
        Column("display_name", Text(), nullable=False),
        Column("mime_type", String(255), nullable=False),
        Column("size_bytes", BigInteger(), nullable=False),
        Column("received_bytes", BigInteger(), nullable=False),
        Column("sha256", String(44), nullable=True),
        Column("state", String(16), nullable=False),
        Column("source", String(16), nullable=False),
        Column("upload_id", String(64), nullable=True, unique=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
        Index("ix_gemini_files_key_created", "key_id", "created_at"),
        Index("ix_gemini_files_expires", "expires_at"),
    )
    Table(
        "gemini_file_chunks",
        snapshot,
        Column("file_id", String(40), primary_key=True),
        Column("position", BigInteger(), primary_key=True, autoincrement=False),
        Column("data", LargeBinary(), nullable=False),
    )
    Table(
        "gemini_upstream_files",
        snapshot,
        Column("file_id", String(40), primary_key=True),
        Column("provider", String(200), primary_key=True),
        Column("credential", String(64), primary_key=True),
        Column("upstream_uri", Text(), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
    )
    snapshot.create_all(conn, checkfirst=False)


def _create_usage_rollups(conn: Connection) -> None:
    snapshot = MetaData()
    for name in ("usage_rollups_hour", "usage_rollups_day"):
        Table(
            name,
            snapshot,
            Column("bucket_start", UtcDateTime(), primary_key=True),
            Column("key_id", Integer, primary_key=True, autoincrement=False),
            Column("model", String(200), primary_key=True),
            Column("provider", String(200), primary_key=True),
            *(Column(total, BigInteger, nullable=False) for total in _ROLLUP_TOTALS),
            Column("latency_ms_sum", Float(), nullable=False),
        )
    snapshot.create_all(conn, checkfirst=False)
    conn.exec_driver_sql("ALTER TABLE usage_records ADD COLUMN dropped TEXT")
    for name, columns in (("ix_usage_records_key_id", "key_id, id"),
                          ("ix_usage_records_model_id", "model, id"),
                          ("ix_usage_records_provider_id", "provider, id")):
        conn.exec_driver_sql(f"CREATE INDEX {name} ON usage_records ({columns})")
    conn.exec_driver_sql(
        "CREATE INDEX ix_usage_records_errors ON usage_records (id) WHERE status >= 400")
    sqlite = conn.dialect.name == "sqlite"
    for table, unit in (("usage_rollups_hour", "hour"), ("usage_rollups_day", "day")):
        conn.exec_driver_sql(_rollup_backfill(table, unit, sqlite=sqlite))


_ROLLUP_TOTALS = ("requests", "errors", "prompt_tokens", "output_tokens", "thoughts_tokens",
                  "cached_tokens", "cost_nanos")


def _rollup_backfill(table: str, unit: str, *, sqlite: bool) -> str:
    """The rollups of the records already stored, in one INSERT … SELECT. SQLite keeps
    timestamps as UTC text in SQLAlchemy's format, so the bucket is that text cut to the hour
    or day; PostgreSQL truncates in UTC, whatever the session's time zone."""
    if sqlite:
        pattern = "%Y-%m-%d %H:00:00.000000" if unit == "hour" else "%Y-%m-%d 00:00:00.000000"
        bucket = f"strftime('{pattern}', created_at)"
        cost = "SUM(CAST(ROUND(cost_usd * 1e9) AS INTEGER))"
    else:
        bucket = f"date_trunc('{unit}', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        cost = "CAST(SUM(cost_usd) * 1e9 AS BIGINT)"
    return (
        f"INSERT INTO {table} (bucket_start, key_id, model, provider, "
        f"{', '.join(_ROLLUP_TOTALS)}, latency_ms_sum) "
        f"SELECT {bucket}, key_id, model, COALESCE(provider, ''), COUNT(*), "
        "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens), "
        f"SUM(output_tokens), SUM(thoughts_tokens), SUM(cached_tokens), {cost}, "
        f"SUM(latency_ms) FROM usage_records GROUP BY {bucket}, key_id, model, "
        "COALESCE(provider, '')"
    )


def _create_cached_contents(conn: Connection) -> None:
    snapshot = MetaData()
    Table(
        "cached_contents",
        snapshot,
        Column("id", String(80), primary_key=True),
        Column("key_id", Integer, nullable=False),
        Column("model", String(200), nullable=False),
        Column("display_name", String(200), nullable=True),
        Column("body", Text(), nullable=False),
        Column("total_tokens", Integer, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("expires_at", UtcDateTime(), nullable=False),
        Index("ix_cached_contents_key_created", "key_id", "created_at"),
        Index("ix_cached_contents_expires", "expires_at"),
    )
    Table(
        "upstream_cached_contents",
        snapshot,
        Column("cache_id", String(80), primary_key=True),
        Column("provider", String(200), primary_key=True),
        Column("credential", String(200), primary_key=True),
        Column("upstream_name", String(300), nullable=False),
    )
    snapshot.create_all(conn, checkfirst=False)


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_create_api_keys", _create_api_keys),
    Migration("0002_key_translation_policy", _add_key_translation),
    Migration("0003_key_policies", _add_key_policies),
    Migration("0004_create_usage_records", _create_usage_records),
    Migration("0005_key_allowed_passthrough_fields", _add_key_allowed_passthrough),
    Migration("0006_stored_conversations", _create_stored_conversations),
    Migration("0007_usage_billable_units", _add_usage_billable_units),
    Migration("0008_gemini_files", _create_gemini_files),
    Migration("0010_batches", _create_batches),
    Migration("0011_usage_rollups", _create_usage_rollups),
    Migration("0009_cached_contents", _create_cached_contents),
    Migration("0012_batch_upstream_jobs", _create_batch_upstream_jobs),
)


async def apply_migrations(
    engine: AsyncEngine, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Bring the database up to date; returns the names this call applied (often none)."""
    _check_unique_names(migrations)
    await _ensure_ledger(engine)
    applied = await applied_migrations(engine)
    _check_known(applied, migrations)
    newly_applied: list[str] = []
    for migration in migrations:
        if migration.name not in applied and await apply_one(engine, migration):
            newly_applied.append(migration.name)
    return newly_applied


async def applied_migrations(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(schema_migrations.c.name))
        return {name for (name,) in rows}


async def apply_one(engine: AsyncEngine, migration: Migration) -> bool:
    """Claim and run one migration; False when another process had already applied it."""
    try:
        async with engine.begin() as conn:
            await _serialize_migrators(conn)
            await conn.execute(
                insert(schema_migrations).values(name=migration.name, applied_at=datetime.now(UTC))
            )
            await conn.run_sync(migration.apply)
    except IntegrityError:
        # Either our claim lost to a committed one, or the migration itself broke a
        # constraint; only the ledger can tell which, and only the first is benign.
        if migration.name in await applied_migrations(engine):
            return False
        raise
    return True


async def _ensure_ledger(engine: AsyncEngine) -> None:
    # IF NOT EXISTS (not a check-then-create) so that concurrent first opens cannot collide.
    async with engine.begin() as conn:
        await _serialize_migrators(conn)
        await conn.execute(CreateTable(schema_migrations, if_not_exists=True))


async def _serialize_migrators(conn: AsyncConnection) -> None:
    """PostgreSQL only: wait for other migrators of this schema until this transaction ends."""
    if conn.dialect.name == "postgresql":
        schema_key = func.hashtext(func.current_schema())
        await conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_CLASS, schema_key)))


def _check_unique_names(migrations: Sequence[Migration]) -> None:
    names = [m.name for m in migrations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MigrationError(f"duplicate migration names: {', '.join(duplicates)}")


def _check_known(applied: set[str], migrations: Sequence[Migration]) -> None:
    unknown = applied - {m.name for m in migrations}
    if unknown:
        raise MigrationError(
            "the database has migrations this version does not know "
            f"({', '.join(sorted(unknown))}); it was written by a newer cometgate"
        )
