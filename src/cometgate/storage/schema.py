"""The current shape of the database, as SQLAlchemy Core tables.

Queries use these tables. Migrations do not: each migration carries its own snapshot of the
DDL it ran, so that editing a table here can never change what an old migration does (a test
checks that the migrated database and these tables agree).

Portability invariant: only types and constructs that SQLite and PostgreSQL both accept; the
one dialect-specific spelling is the partial-index predicate, which SQLAlchemy renders for each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)

NAME_MAX_LENGTH = 64
PREFIX_LENGTH = 11  # "cg-" + 8 characters of the random part
SHA256_HEX_LENGTH = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive datetimes are refused on the way in, because their zone is a guess. SQLite stores
    timestamps as text without a zone, so values come back naive there and are marked UTC on
    the way out; PostgreSQL (`timestamptz`) returns aware values, which are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    # The primary key is what makes a migration's claim exclusive between processes.
    Column("name", String(200), primary_key=True),
    Column("applied_at", UtcDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX_LENGTH), nullable=False),
    Column("prefix", String(PREFIX_LENGTH), nullable=False),
    Column("key_hash", String(SHA256_HEX_LENGTH), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Kept for a later batched "last seen" write; never written on the request path.
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # Overrides the model's translation policy for this key (default/strict/lenient).
    Column("translation", String(16), nullable=True),
    Index("ix_api_keys_prefix", "prefix"),
)

# A name identifies at most one active key; revoked keys keep their name so that history
# reads naturally, and the name can be reused for a replacement key.
_active = api_keys.c.revoked_at.is_(None)
Index(
    "uq_api_keys_active_name",
    api_keys.c.name,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)
