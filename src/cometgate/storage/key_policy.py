"""What an operator sets on a key besides its name: owner, metadata, expiry, allow-lists,
rate limits and budgets — checked here, before anything reaches the database.

Invariants of a `KeyPolicy` that went through `checked_policy`:
- every limit is an int in [1, its maximum]; every budget is a Decimal > 0 with at most six
  decimal places (the column's scale), so what is stored is exactly what was asked for;
- `budget_period` and `budget_period_usd` are both set or both None;
- `allowed_ips` holds canonical network strings (`ipaddress.ip_network(...)` text);
- each `allowed_models` entry names a configured model or is a glob pattern that matches one;
- `metadata` is a JSON object whose encoding fits in METADATA_MAX_BYTES;
- each `allowed_passthrough` entry is one of BILLABLE_FIELDS;
- `store_conversations` is a bool (False: the gateway keeps none of this key's conversations).
Empty allow-lists mean "no restriction", except `allowed_passthrough`, whose empty list means
that a key with a budget or a strict translation policy may send none of the billable fields.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any

import orjson

METADATA_MAX_BYTES = 16 * 1024
OWNER_MAX_LENGTH = 200  # the column's width
BUDGET_PERIODS = ("day", "month")
# Far beyond any real use; above these a value is a typo. PostgreSQL's INTEGER tops out at
# 2**31 - 1, which bounds tpm and rpd.
LIMIT_MAXIMA: Mapping[str, int] = {
    "rpm": 10_000_000,
    "tpm": 2_000_000_000,
    "rpd": 1_000_000_000,
    "max_concurrent": 100_000,
}
BUDGET_MAXIMUM = Decimal(1_000_000_000)
_BUDGET_EXPONENT = -6  # Numeric(18, 6)
# Request fields the upstream bills beyond one answer's tokens, by the name an operator allows
# them with (a Gemini field's camelCase spelling; its snake_case spelling is the same field).
# A key with a budget or a strict translation policy is refused these unless allowed.
BILLABLE_FIELDS = (
    # Gemini built-in tools
    "googleSearch", "googleSearchRetrieval", "urlContext", "codeExecution", "googleMaps",
    "fileSearch", "computerUse", "enterpriseWebSearch",
    # Gemini request fields
    "cachedContent", "candidateCount",
    # OpenAI request fields
    "n", "service_tier", "web_search_options",
    # OpenAI Responses built-in tools
    "web_search",
)
_GLOB_CHARACTERS = frozenset("*?[")
_MAX_LIST_ENTRIES = 1000


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    owner: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    allowed_models: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_concurrent: int | None = None
    budget_total_usd: Decimal | None = None
    budget_period: str | None = None
    budget_period_usd: Decimal | None = None
    allowed_passthrough: tuple[str, ...] = ()  # billable fields this key may send anyway
    store_conversations: bool = True  # False: `store` is ignored, nothing is kept for this key


POLICY_FIELDS = tuple(f.name for f in fields(KeyPolicy))
# What None means for each field: no restriction, no limit, no metadata.
_DEFAULTS: Mapping[str, Any] = {f.name: getattr(KeyPolicy(), f.name) for f in fields(KeyPolicy)}
_COLUMN_OF = {
    "metadata": "metadata_json",
    "allowed_models": "allowed_models_json",
    "allowed_ips": "allowed_ips_json",
    "allowed_passthrough": "allowed_passthrough_json",
}


def checked_policy(policy: KeyPolicy, *, known_models: Collection[str] | None) -> KeyPolicy:
    """`policy` with normalised values; ValueError naming the field for the first problem.

    `known_models` None skips the allow-list check against configured models.
    """
    owner = _checked_owner(policy.owner)
    metadata = _checked_metadata(policy.metadata)
    expires_at = _checked_time("expires_at", policy.expires_at)
    models = _checked_models(policy.allowed_models, known_models)
    ips = _checked_networks(policy.allowed_ips)
    limits = {name: _checked_limit(name, getattr(policy, name)) for name in LIMIT_MAXIMA}
    total = _checked_budget("budget_total_usd", policy.budget_total_usd)
    period_amount = _checked_budget("budget_period_usd", policy.budget_period_usd)
    period = _checked_period(policy.budget_period, period_amount)
    passthrough = _checked_billable(policy.allowed_passthrough)
    if not isinstance(policy.store_conversations, bool):
        raise ValueError("store_conversations must be true or false")
    return KeyPolicy(store_conversations=policy.store_conversations,
        owner=owner, metadata=metadata, expires_at=expires_at, allowed_models=models,
        allowed_ips=ips, budget_total_usd=total, budget_period=period,
        budget_period_usd=period_amount, allowed_passthrough=passthrough, **limits,
    )


def policy_from_arguments(given: Mapping[str, Any]) -> KeyPolicy:
    """A policy from keyword arguments named like its fields; None means "not set"."""
    unknown = sorted(set(given) - set(POLICY_FIELDS))
    if unknown:
        raise ValueError(f"unknown key field(s): {', '.join(unknown)}")
    return KeyPolicy(**{k: v for k, v in given.items() if v is not None})


def changed_policy_columns(
    current: KeyPolicy, changes: Mapping[str, Any], known_models: Collection[str] | None
) -> dict[str, Any]:
    """The columns to write for `changes` (None clears a field), after checking the whole
    resulting policy. Only touched columns are returned, so concurrent updates of different
    fields both land; the budget period and its amount are checked and written as a pair."""
    cleared = {k: _DEFAULTS[k] if v is None else v for k, v in changes.items()}
    merged = checked_policy(replace(current, **cleared), known_models=known_models)
    columns = policy_columns(merged)
    touched = {_COLUMN_OF.get(k, k) for k in changes}
    if touched & {"budget_period", "budget_period_usd"}:
        touched |= {"budget_period", "budget_period_usd"}
    return {k: columns[k] for k in touched}


def policy_columns(policy: KeyPolicy) -> dict[str, Any]:
    """The `api_keys` column values that store `policy` (JSON text for the structured ones)."""
    return {
        "owner": policy.owner,
        "metadata_json": _json_or_none(policy.metadata),
        "expires_at": policy.expires_at,
        "allowed_models_json": _json_or_none(list(policy.allowed_models)),
        "allowed_ips_json": _json_or_none(list(policy.allowed_ips)),
        "rpm": policy.rpm,
        "tpm": policy.tpm,
        "rpd": policy.rpd,
        "max_concurrent": policy.max_concurrent,
        "budget_total_usd": policy.budget_total_usd,
        "budget_period": policy.budget_period,
        "budget_period_usd": policy.budget_period_usd,
        "allowed_passthrough_json": _json_or_none(list(policy.allowed_passthrough)),
        "store_conversations": policy.store_conversations,
    }


def policy_from_columns(row: Mapping[str, Any]) -> KeyPolicy:
    """The inverse of `policy_columns`, for a row read back from `api_keys`."""
    return KeyPolicy(
        owner=row["owner"],
        metadata=orjson.loads(row["metadata_json"]) if row["metadata_json"] else {},
        expires_at=row["expires_at"],
        allowed_models=tuple(_loads_list(row["allowed_models_json"])),
        allowed_ips=tuple(_loads_list(row["allowed_ips_json"])),
        rpm=row["rpm"],
        tpm=row["tpm"],
        rpd=row["rpd"],
        max_concurrent=row["max_concurrent"],
        budget_total_usd=_stored_money(row["budget_total_usd"]),
        budget_period=row["budget_period"],
        budget_period_usd=_stored_money(row["budget_period_usd"]),
        allowed_passthrough=tuple(_loads_list(row["allowed_passthrough_json"])),
        # NULL: a key made before the column existed, which stored by default.
        store_conversations=row["store_conversations"] is not False,
    )


def model_allowed(allowed: tuple[str, ...], model: str) -> bool:
    """Whether an allow-list admits `model`: exact names and glob patterns; empty admits all."""
    return not allowed or any(fnmatchcase(model, entry) for entry in allowed)


def address_allowed(allowed: tuple[str, ...], address: str | None) -> bool:
    """Whether a client address falls in one of the networks; empty admits all. An address
    that is unknown (None) or unreadable is in none. An IPv4 client seen on a dual-stack
    socket (`::ffff:10.1.2.3`) is the IPv4 address it carries."""
    if not allowed:
        return True
    if address is None:
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    # strict=False: a range stored before ranges were normalised still reads as its network.
    return any(parsed in ipaddress.ip_network(network, strict=False) for network in allowed)


def _checked_owner(owner: str | None) -> str | None:
    if owner is None:
        return None
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError("owner must be a non-empty string")
    if len(owner) > OWNER_MAX_LENGTH:
        raise ValueError(f"owner is {len(owner)} characters long; the limit is {OWNER_MAX_LENGTH}")
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in owner):
        raise ValueError("owner must not contain control or invisible characters")
    return owner


def _checked_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a JSON object, not {type(metadata).__name__}")
    try:
        size = len(orjson.dumps(metadata))
    except TypeError as exc:
        raise ValueError(f"metadata must hold only JSON values ({exc})") from None
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the limit is {METADATA_MAX_BYTES}")
    return metadata


def _checked_time(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a timestamp, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone (for example 2030-01-01T00:00:00Z)")
    return value


def _checked_models(
    allowed: tuple[str, ...], known_models: Collection[str] | None
) -> tuple[str, ...]:
    entries = _checked_strings("allowed_models", allowed)
    if known_models is None:
        return entries
    for entry in entries:
        if _GLOB_CHARACTERS.isdisjoint(entry):
            if entry not in known_models:
                raise ValueError(f"allowed_models: {entry!r} is not a configured model")
        elif not any(fnmatchcase(model, entry) for model in known_models):
            raise ValueError(f"allowed_models: the pattern {entry!r} matches no configured model")
    return entries


def _checked_networks(allowed: tuple[str, ...]) -> tuple[str, ...]:
    networks: list[str] = []
    for entry in _checked_strings("allowed_ips", allowed):
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=True)))
        except ValueError as exc:
            raise ValueError(f"allowed_ips: {entry!r} is not a CIDR range ({exc})") from None
    return tuple(dict.fromkeys(networks))


def _checked_billable(allowed: tuple[str, ...]) -> tuple[str, ...]:
    entries = _checked_strings("allowed_passthrough", allowed)
    for entry in entries:
        if entry not in BILLABLE_FIELDS:
            raise ValueError(f"allowed_passthrough: {entry!r} is not a billable field; "
                             f"known fields: {', '.join(BILLABLE_FIELDS)}")
    return entries


def _checked_strings(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple | list):
        raise ValueError(f"{name} must be a list of strings")
    if len(values) > _MAX_LIST_ENTRIES:
        raise ValueError(f"{name} has {len(values)} entries; the limit is {_MAX_LIST_ENTRIES}")
    for value in values:
        if not isinstance(value, str) or not value or value != value.strip():
            raise ValueError(f"{name} entries must be non-empty strings without surrounding spaces")
    return tuple(dict.fromkeys(values))


def _checked_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    # bool is an int to Python, never a limit to a person.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {type(value).__name__}")
    maximum = LIMIT_MAXIMA[name]
    if not 1 <= value <= maximum:
        raise ValueError(
            f"{name} must be between 1 and {maximum:,} (got {value}); "
            "leave it unset for no limit, or revoke the key to stop it"
        )
    return value


def _checked_budget(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"{name} must be a decimal amount of USD, not {type(value).__name__}")
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{name} must be a positive amount of USD (got {value})")
    if amount > BUDGET_MAXIMUM:
        raise ValueError(f"{name} must be at most {BUDGET_MAXIMUM:,} USD (got {value})")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < _BUDGET_EXPONENT:
        raise ValueError(f"{name} has more than 6 decimal places (got {value})")
    return amount


def _checked_period(period: Any, amount: Decimal | None) -> str | None:
    if period is not None and period not in BUDGET_PERIODS:
        raise ValueError(
            f"budget_period must be one of {', '.join(BUDGET_PERIODS)}, not {period!r}"
        )
    if (period is None) != (amount is None):
        raise ValueError("budget_period and budget_period_usd must be set together")
    return str(period) if period is not None else None


def parse_money(name: str, text: str) -> Decimal:
    """A USD amount from text, as typed on a command line or sent as a JSON string."""
    try:
        return Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ValueError(f"{name} must be a decimal amount of USD, not {text!r}") from None


def _json_or_none(value: dict[str, Any] | list[str]) -> str | None:
    return orjson.dumps(value).decode() if value else None


def _loads_list(text: str | None) -> list[str]:
    return list(orjson.loads(text)) if text else []


def _stored_money(value: Any) -> Decimal | None:
    # SQLite hands Numeric back through float unless asked; normalise to the column's scale.
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal(1).scaleb(_BUDGET_EXPONENT))
