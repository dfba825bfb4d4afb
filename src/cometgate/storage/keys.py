"""API keys: issued once in plaintext, stored only as a SHA-256 digest.

A key is `"cg-" + secrets.token_urlsafe(32)` (46 characters, 256 random bits). Its first 11
characters are stored as a visible prefix, so an operator can tell keys apart and a lookup can
find the candidate rows by an index before comparing digests in constant time.

Decisions:
- A name belongs to at most one *active* key (a partial unique index enforces it); revoked keys
  keep their names, so a name can be reused for a replacement key.
- Names that look like the other identifiers are refused (all digits: an id; starting with
  "cg-": a prefix), so `find`/`revoke` read an identifier without guessing.
- Revoking is idempotent: revoking a revoked key returns it unchanged, with its original
  `revoked_at`, and writes nothing.
- `authenticate` answers None for an unknown key and the record (with `revoked_at` set) for a
  revoked one, so the HTTP layer can word the two answers differently.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.schema import NAME_MAX_LENGTH, PREFIX_LENGTH, api_keys

KEY_SCHEME = "cg-"
_RANDOM_BYTES = 32
# Far above a real key's 46 characters; bounds the work an arbitrary header can cause.
_PRESENTED_MAX_LENGTH = 256
# Categories that make a name print as something else: C0/C1 controls, invisible format
# characters (bidi overrides, zero-width joiners), lone surrogates, line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_RECORD_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
    api_keys.c.translation,
)


class KeyNotFoundError(LookupError):
    """No key matches the identifier given."""


class AmbiguousKeyError(LookupError):
    """A prefix matches more than one key; the id must be used instead."""


class DuplicateKeyNameError(ValueError):
    """An active key already has this name."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is known about a key besides its secret. Holds neither the key nor its digest."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    translation: str | None = None  # overrides the model's translation policy

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def validate_key_name(name: str) -> None:
    """Raise ValueError, saying why, unless `name` is acceptable for a new key."""
    if not isinstance(name, str):
        raise ValueError(f"API key name must be a string, not {type(name).__name__}")
    if not name:
        raise ValueError("API key name must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(
            f"API key name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}"
        )
    for position, char in enumerate(name):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"API key name must not contain control or invisible characters "
                f"(found U+{ord(char):04X} at position {position})"
            )
    if name != name.strip():
        raise ValueError("API key name must not begin or end with whitespace")
    if name.isascii() and name.isdigit():
        raise ValueError("API key name must not be all digits (that reads as a key id)")
    if name.startswith(KEY_SCHEME):
        raise ValueError(f"API key name must not start with {KEY_SCHEME!r} (that reads as a key)")


def key_digest(key: str) -> str:
    """The stored form of a key: SHA-256 of its UTF-8 bytes, as lowercase hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


TRANSLATION_POLICIES = ("default", "strict", "lenient")


class KeyRepository:
    """Creates, lists, revokes and checks API keys in the `api_keys` table."""

    def __init__(self, database: Database) -> None:
        self.database = database  # the owner closes it; the repository never does
        self._engine = database.engine

    async def create(
        self, name: str, *, translation: str | None = None
    ) -> tuple[KeyRecord, str]:
        """Store a new key; returns its record and the plaintext key, which is not kept."""
        validate_key_name(name)
        if translation is not None and translation not in TRANSLATION_POLICIES:
            raise ValueError(
                f"translation must be one of {', '.join(TRANSLATION_POLICIES)}, not {translation!r}"
            )
        key = KEY_SCHEME + secrets.token_urlsafe(_RANDOM_BYTES)
        created_at = datetime.now(UTC)
        values = {
            "name": name,
            "prefix": key[:PREFIX_LENGTH],
            "key_hash": key_digest(key),
            "created_at": created_at,
            "translation": translation,
        }
        try:
            async with self._engine.begin() as conn:
                await self._refuse_active_name(conn, name)
                result = await conn.execute(insert(api_keys).values(**values))
                (key_id,) = result.inserted_primary_key or (None,)
        except IntegrityError:
            # A concurrent create won the unique index between our check and our insert.
            async with self._engine.connect() as conn:
                await self._refuse_active_name(conn, name)
            raise
        if not isinstance(key_id, int):
            raise RuntimeError("the database did not report the new key's id")
        record = KeyRecord(key_id, name, key[:PREFIX_LENGTH], created_at, None, translation)
        return record, key

    async def list(self) -> builtins.list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(*_RECORD_COLUMNS).order_by(api_keys.c.id))
            return [_record(row) for row in rows]

    async def count(self, *, include_revoked: bool = False) -> int:
        """How many keys can authenticate (or exist at all, with `include_revoked`)."""
        query = select(func.count()).select_from(api_keys)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def find(self, ident: str) -> KeyRecord:
        """The key with this id, prefix or name (a name prefers its active key).

        Raises KeyNotFoundError, or AmbiguousKeyError for a prefix shared by several keys.
        """
        async with self._engine.connect() as conn:
            return await _resolve(conn, ident)

    async def revoke(self, ident: str) -> KeyRecord:
        """Revoke the key `find(ident)` names; returns it with `revoked_at` set."""
        async with self._engine.begin() as conn:
            record = await _resolve(conn, ident)
            if record.revoked:
                return record
            # The revoked_at guard keeps the first revocation time if two revokes race.
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == record.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = (
                await conn.execute(select(*_RECORD_COLUMNS).where(api_keys.c.id == record.id))
            ).one()
            return _record(row)

    async def authenticate(self, presented: str) -> KeyRecord | None:
        """The record of the key presented, revoked or not; None when no stored key matches."""
        if not _could_be_key(presented):
            return None
        digest = key_digest(presented)
        query = select(*_RECORD_COLUMNS, api_keys.c.key_hash).where(
            api_keys.c.prefix == presented[:PREFIX_LENGTH]
        )
        async with self._engine.connect() as conn:
            candidates = (await conn.execute(query)).all()
        match: KeyRecord | None = None
        # Every candidate is compared, so the time taken does not depend on which one matches.
        for row in candidates:
            if hmac.compare_digest(row.key_hash, digest):
                match = _record(row)
        return match

    async def _refuse_active_name(self, conn: AsyncConnection, name: str) -> None:
        query = select(api_keys.c.id).where(
            api_keys.c.name == name, api_keys.c.revoked_at.is_(None)
        )
        existing = (await conn.execute(query)).scalar_one_or_none()
        if existing is not None:
            raise DuplicateKeyNameError(
                f"an active API key named {name!r} already exists (id {existing}); "
                "revoke it first or choose another name"
            )


def _could_be_key(presented: str) -> bool:
    return (
        isinstance(presented, str)
        and PREFIX_LENGTH < len(presented) <= _PRESENTED_MAX_LENGTH
        and presented.startswith(KEY_SCHEME)
    )


async def _resolve(conn: AsyncConnection, ident: str) -> KeyRecord:
    if ident.isascii() and ident.isdigit():
        return await _by_id(conn, int(ident))
    if ident.startswith(KEY_SCHEME):
        return await _by_prefix(conn, ident)
    return await _by_name(conn, ident)


async def _by_id(conn: AsyncConnection, key_id: int) -> KeyRecord:
    query = select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise KeyNotFoundError(f"no API key has id {key_id}")
    return _record(row)


async def _by_prefix(conn: AsyncConnection, prefix: str) -> KeyRecord:
    if len(prefix) != PREFIX_LENGTH:
        raise KeyNotFoundError(
            f"{prefix[:PREFIX_LENGTH]!r}… is not a key prefix: a prefix is the first "
            f"{PREFIX_LENGTH} characters of a key, like 'cg-AbCd1234'"
        )
    query = select(*_RECORD_COLUMNS).where(api_keys.c.prefix == prefix).order_by(api_keys.c.id)
    rows = (await conn.execute(query)).all()
    if not rows:
        raise KeyNotFoundError(f"no API key has prefix {prefix!r}")
    if len(rows) > 1:
        ids = ", ".join(str(row.id) for row in rows)
        raise AmbiguousKeyError(f"prefix {prefix!r} matches keys {ids}; use the id instead")
    return _record(rows[0])


async def _by_name(conn: AsyncConnection, name: str) -> KeyRecord:
    # The active key if there is one, else the most recent revoked key of that name.
    query = (
        select(*_RECORD_COLUMNS)
        .where(api_keys.c.name == name)
        .order_by(api_keys.c.revoked_at.is_(None).desc(), api_keys.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise KeyNotFoundError(f"no API key is named {name!r}")
    return _record(row)


def _record(row: Row[*tuple[Any, ...]]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        translation=row.translation,
    )
