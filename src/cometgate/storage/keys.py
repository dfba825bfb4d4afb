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
- Policies (owner, metadata, expiry, allow-lists, limits, budgets: see key_policy) are checked
  whole on every create and update, so a stored key never holds a combination that was refused.
- Rotating keeps the id (and with it the usage history and policies) and replaces the secret and
  prefix; deleting removes the key row and the conversations stored for it (personal data that
  nobody could read any more), while usage rows outlive their key by design.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.key_policy import (
    POLICY_FIELDS,
    KeyPolicy,
    changed_policy_columns,
    checked_policy,
    policy_columns,
    policy_from_arguments,
)
from cometgate.storage.key_records import (
    KEY_SCHEME,
    RECORD_COLUMNS,
    AmbiguousKeyError,
    KeyNotFoundError,
    KeyRecord,
    key_by_id,
    record_of_row,
    resolve_key,
)
from cometgate.storage.schema import (
    NAME_MAX_LENGTH,
    PREFIX_LENGTH,
    api_keys,
    cached_contents,
    stored_turn_items,
    stored_turns,
)

__all__ = [
    "KEY_SCHEME",
    "TRANSLATION_POLICIES",
    "AmbiguousKeyError",
    "DuplicateKeyNameError",
    "KeyNotFoundError",
    "KeyRecord",
    "KeyRepository",
    "key_digest",
    "validate_key_name",
]
_RANDOM_BYTES = 32
# Far above a real key's 46 characters; bounds the work an arbitrary header can cause.
_PRESENTED_MAX_LENGTH = 256
# Categories that make a name print as something else: C0/C1 controls, invisible format
# characters (bidi overrides, zero-width joiners), lone surrogates, line/paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# What `update` may change besides the policy fields.
_UPDATABLE = frozenset({"name", "translation", *POLICY_FIELDS})


class DuplicateKeyNameError(ValueError):
    """An active key already has this name."""


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
    """Creates, lists, changes, rotates, revokes, deletes and checks keys in `api_keys`.

    `known_models`, when given, is what allow-lists are checked against.
    """

    def __init__(
        self, database: Database, *, known_models: Collection[str] | None = None
    ) -> None:
        self.database = database  # the owner closes it; the repository never does
        self._engine = database.engine
        self._known_models = None if known_models is None else frozenset(known_models)

    async def create(
        self, name: str, *, translation: str | None = None, **policy: Any
    ) -> tuple[KeyRecord, str]:
        """Store a new key; returns its record and the plaintext key, which is not kept.

        `policy` takes the KeyPolicy fields (owner, metadata, expires_at, allowed_models, …).
        """
        validate_key_name(name)
        _check_translation(translation)
        checked = self._checked(policy_from_arguments(policy))
        created_at = datetime.now(UTC)
        if checked.expires_at is not None and checked.expires_at <= created_at:
            raise ValueError("expires_at is in the past; a new key must expire in the future")
        key = _new_key()
        values = {
            "name": name,
            **_secret_columns(key),
            "created_at": created_at,
            "translation": translation,
            **policy_columns(checked),
        }
        try:
            async with self._engine.begin() as conn:
                await self._refuse_active_name(conn, name)
                result = await conn.execute(insert(api_keys).values(**values))
                (key_id,) = result.inserted_primary_key or (None,)
                if not isinstance(key_id, int):
                    raise RuntimeError("the database did not report the new key's id")
                record = await key_by_id(conn, key_id)
        except IntegrityError:
            # A concurrent create won the unique index between our check and our insert.
            async with self._engine.connect() as conn:
                await self._refuse_active_name(conn, name)
            raise
        return record, key

    async def update(self, ident: str, **changes: Any) -> KeyRecord:
        """Change some fields of the key `find(ident)` names; None clears a field.

        The whole resulting policy is checked, so a change can be refused because of a field it
        does not touch (setting budget_period on a key without budget_period_usd, say).
        """
        unknown = sorted(set(changes) - _UPDATABLE)
        if unknown:
            raise ValueError(f"unknown key field(s): {', '.join(unknown)}")
        async with self._engine.begin() as conn:
            record = await resolve_key(conn, ident)
            values = self._changed_columns(record, changes)
            if "name" in changes:
                await self._refuse_active_name(conn, changes["name"], but=record.id)
            values["updated_at"] = datetime.now(UTC)
            await conn.execute(update(api_keys).where(api_keys.c.id == record.id).values(values))
            return await key_by_id(conn, record.id)

    async def show(self, ident: str) -> KeyRecord:
        """The key with this id, prefix or name; the same as `find`."""
        return await self.find(ident)

    async def rotate(self, ident: str) -> tuple[KeyRecord, str]:
        """Give the key a new secret (and so a new prefix); the old secret stops working.

        Id, name, policies and usage history stay. A revoked key is not brought back.
        """
        key = _new_key()
        async with self._engine.begin() as conn:
            record = await resolve_key(conn, ident)
            if record.revoked:
                raise ValueError(f"API key {record.id} is revoked; create a new key instead")
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == record.id)
                .values(**_secret_columns(key), updated_at=datetime.now(UTC))
            )
            return await key_by_id(conn, record.id), key

    async def delete(self, ident: str) -> KeyRecord:
        """Remove the key row and its stored conversations, and end its cachedContents (they
        expire now: the sweep removes them with the copies upstreams hold); its usage records
        stay (they hold the id, not a reference)."""
        async with self._engine.begin() as conn:
            record = await resolve_key(conn, ident)
            await conn.execute(delete(api_keys).where(api_keys.c.id == record.id))
            turns = select(stored_turns.c.id).where(stored_turns.c.key_id == record.id)
            await conn.execute(delete(stored_turn_items)
                               .where(stored_turn_items.c.turn_id.in_(turns)))
            await conn.execute(delete(stored_turns).where(stored_turns.c.key_id == record.id))
            await conn.execute(update(cached_contents)
                               .where(cached_contents.c.key_id == record.id,
                                      cached_contents.c.expires_at > datetime.now(UTC))
                               .values(expires_at=datetime.now(UTC)))
            return record

    async def list(self) -> builtins.list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(*RECORD_COLUMNS).order_by(api_keys.c.id))
            return [record_of_row(row) for row in rows]

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
            return await resolve_key(conn, ident)

    async def revoke(self, ident: str) -> KeyRecord:
        """Revoke the key `find(ident)` names; returns it with `revoked_at` set."""
        async with self._engine.begin() as conn:
            record = await resolve_key(conn, ident)
            if record.revoked:
                return record
            # The revoked_at guard keeps the first revocation time if two revokes race.
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == record.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = (
                await conn.execute(select(*RECORD_COLUMNS).where(api_keys.c.id == record.id))
            ).one()
            return record_of_row(row)

    async def authenticate(self, presented: str) -> KeyRecord | None:
        """The record of the key presented, revoked or not; None when no stored key matches."""
        if not _could_be_key(presented):
            return None
        digest = key_digest(presented)
        query = select(*RECORD_COLUMNS, api_keys.c.key_hash).where(
            api_keys.c.prefix == presented[:PREFIX_LENGTH]
        )
        async with self._engine.connect() as conn:
            candidates = (await conn.execute(query)).all()
        match: KeyRecord | None = None
        # Every candidate is compared, so the time taken does not depend on which one matches.
        for row in candidates:
            if hmac.compare_digest(row.key_hash, digest):
                match = record_of_row(row)
        return match

    def _checked(self, policy: KeyPolicy) -> KeyPolicy:
        return checked_policy(policy, known_models=self._known_models)

    def _changed_columns(self, record: KeyRecord, changes: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in changes:
            if changes["name"] is None:
                raise ValueError("name cannot be cleared")
            validate_key_name(changes["name"])
            values["name"] = changes["name"]
        if "translation" in changes:
            _check_translation(changes["translation"])
            values["translation"] = changes["translation"]
        policy_changes = {k: v for k, v in changes.items() if k in POLICY_FIELDS}
        if policy_changes:
            values.update(
                changed_policy_columns(record.policy(), policy_changes, self._known_models)
            )
        return values

    async def _refuse_active_name(
        self, conn: AsyncConnection, name: str, *, but: int | None = None
    ) -> None:
        query = select(api_keys.c.id).where(
            api_keys.c.name == name, api_keys.c.revoked_at.is_(None)
        )
        if but is not None:
            query = query.where(api_keys.c.id != but)
        existing = (await conn.execute(query)).scalar_one_or_none()
        if existing is not None:
            raise DuplicateKeyNameError(
                f"an active API key named {name!r} already exists (id {existing}); "
                "revoke it first or choose another name"
            )


def _check_translation(translation: str | None) -> None:
    if translation is not None and translation not in TRANSLATION_POLICIES:
        raise ValueError(
            f"translation must be one of {', '.join(TRANSLATION_POLICIES)}, not {translation!r}"
        )


def _new_key() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(_RANDOM_BYTES)


def _secret_columns(key: str) -> dict[str, str]:
    return {"prefix": key[:PREFIX_LENGTH], "key_hash": key_digest(key)}


def _could_be_key(presented: str) -> bool:
    return (
        isinstance(presented, str)
        and PREFIX_LENGTH < len(presented) <= _PRESENTED_MAX_LENGTH
        and presented.startswith(KEY_SCHEME)
    )
