"""Reading keys back: the record a key is known by, and finding it by id, prefix or name.

A record holds neither the key nor its digest, so it can be logged, cached and returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.limits.policy import BUDGET_PERIODS, BudgetPeriod, Limits
from cometgate.storage.key_policy import (
    POLICY_FIELDS,
    KeyPolicy,
    address_allowed,
    model_allowed,
    policy_from_columns,
)
from cometgate.storage.money import money_text
from cometgate.storage.schema import PREFIX_LENGTH, api_keys

KEY_SCHEME = "cg-"
MAX_KEY_ID = 2**63 - 1  # ids are 64-bit signed integers in SQLite and PostgreSQL alike
_DOCUMENT_FIELDS = ("created_at", "updated_at", "revoked_at", "expires_at", "translation",
                    *POLICY_FIELDS)

RECORD_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
    api_keys.c.translation,
    api_keys.c.updated_at,
    api_keys.c.owner,
    api_keys.c.metadata_json,
    api_keys.c.expires_at,
    api_keys.c.allowed_models_json,
    api_keys.c.allowed_ips_json,
    api_keys.c.rpm,
    api_keys.c.tpm,
    api_keys.c.rpd,
    api_keys.c.max_concurrent,
    api_keys.c.budget_total_usd,
    api_keys.c.budget_period,
    api_keys.c.budget_period_usd,
    api_keys.c.allowed_passthrough_json,
    api_keys.c.store_conversations,
)


def _budget_period(period: str | None) -> BudgetPeriod | None:
    # Stored values were checked against the same two names on the way in.
    return next((known for known in BUDGET_PERIODS if known == period), None)


class KeyNotFoundError(LookupError):
    """No key matches the identifier given."""


class AmbiguousKeyError(LookupError):
    """A prefix matches more than one key; the id must be used instead."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is known about a key besides its secret. Holds neither the key nor its digest."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    translation: str | None = None  # overrides the model's translation policy
    updated_at: datetime | None = None
    owner: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    allowed_models: tuple[str, ...] = ()  # names or glob patterns; empty: every model
    allowed_ips: tuple[str, ...] = ()  # CIDR ranges; empty: any address
    rpm: int | None = None  # None: no limit, here and below
    tpm: int | None = None
    rpd: int | None = None
    max_concurrent: int | None = None
    budget_total_usd: Decimal | None = None
    budget_period: str | None = None  # "day" | "month", with budget_period_usd
    budget_period_usd: Decimal | None = None
    allowed_passthrough: tuple[str, ...] = ()  # billable fields it may send (key_policy)
    store_conversations: bool = True  # False: nothing this key sends is stored

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def limits(self) -> Limits:
        """The limiter's view of this key's rate limits and budgets."""
        return Limits(
            rpm=self.rpm,
            tpm=self.tpm,
            rpd=self.rpd,
            max_concurrent=self.max_concurrent,
            budget_total=self.budget_total_usd,
            budget_period=_budget_period(self.budget_period),
            budget_period_amount=self.budget_period_usd,
        )

    def status(self, now: datetime) -> str:
        """"revoked", "expired" or "active", in that order of precedence."""
        if self.revoked:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def as_document(self, now: datetime) -> dict[str, Any]:
        """Every field as JSON-ready values (money as exact decimal text), plus `status`;
        what the admin API and `keys show` print."""
        document: dict[str, Any] = {
            "id": self.id, "name": self.name, "prefix": self.prefix, "status": self.status(now),
        }
        for name in _DOCUMENT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Decimal):
                value = money_text(value)
            document[name] = value
        return document

    @property
    def budgeted(self) -> bool:
        return self.budget_total_usd is not None or self.budget_period_usd is not None

    def allows_model(self, model: str) -> bool:
        return model_allowed(self.allowed_models, model)

    def allows_address(self, address: str | None) -> bool:
        return address_allowed(self.allowed_ips, address)

    def policy(self) -> KeyPolicy:
        return KeyPolicy(**{name: getattr(self, name) for name in POLICY_FIELDS})


async def resolve_key(conn: AsyncConnection, ident: str) -> KeyRecord:
    if ident.isascii() and ident.isdigit():
        if len(ident) > len(str(MAX_KEY_ID)):  # no such id; and int() of it may refuse
            raise KeyNotFoundError(f"no API key has id {ident[:40]}…")
        return await key_by_id(conn, int(ident))
    if ident.startswith(KEY_SCHEME):
        return await _by_prefix(conn, ident)
    return await _by_name(conn, ident)


async def key_by_id(conn: AsyncConnection, key_id: int) -> KeyRecord:
    if not 0 <= key_id <= MAX_KEY_ID:  # the driver cannot even send it
        raise KeyNotFoundError(f"no API key has id {key_id}")
    query = select(*RECORD_COLUMNS).where(api_keys.c.id == key_id)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise KeyNotFoundError(f"no API key has id {key_id}")
    return record_of_row(row)


async def _by_prefix(conn: AsyncConnection, prefix: str) -> KeyRecord:
    if len(prefix) != PREFIX_LENGTH:
        raise KeyNotFoundError(
            f"{prefix[:PREFIX_LENGTH]!r}… is not a key prefix: a prefix is the first "
            f"{PREFIX_LENGTH} characters of a key, like 'cg-AbCd1234'"
        )
    query = select(*RECORD_COLUMNS).where(api_keys.c.prefix == prefix).order_by(api_keys.c.id)
    rows = (await conn.execute(query)).all()
    if not rows:
        raise KeyNotFoundError(f"no API key has prefix {prefix!r}")
    if len(rows) > 1:
        ids = ", ".join(str(row.id) for row in rows)
        raise AmbiguousKeyError(f"prefix {prefix!r} matches keys {ids}; use the id instead")
    return record_of_row(rows[0])


async def _by_name(conn: AsyncConnection, name: str) -> KeyRecord:
    # The active key if there is one, else the most recent revoked key of that name.
    query = (
        select(*RECORD_COLUMNS)
        .where(api_keys.c.name == name)
        .order_by(api_keys.c.revoked_at.is_(None).desc(), api_keys.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise KeyNotFoundError(f"no API key is named {name!r}")
    return record_of_row(row)


def record_of_row(row: Row[*tuple[Any, ...]]) -> KeyRecord:
    policy = policy_from_columns(dict(row._mapping))
    return KeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        translation=row.translation,
        updated_at=row.updated_at,
        **{name: getattr(policy, name) for name in POLICY_FIELDS},
    )
