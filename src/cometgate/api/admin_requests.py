"""Admin request bodies and query strings → repository arguments, strictly.

Strict means: a body is one JSON object; an unknown field, a wrong JSON type or a bad value is
a 400 that names the field. Types are checked here (JSON has no integers-only or money type);
ranges and cross-field rules are the repository's, whose ValueError the routes turn into 400s.
Money travels as a decimal string ("12.50") both ways; a JSON number is accepted on the way in
and read through its shortest decimal text, so 0.1 means 0.1. Records leave as
`KeyRecord.as_document`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from cometgate.errors import InvalidRequest

Parser = Callable[[str, Any], Any]


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    return value


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    return value


def _money(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _wrong_type(name, "a decimal string such as \"12.50\"", value)
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise invalid(name, f"{name} must be a decimal amount of USD, not {value!r}") from None


def _timestamp(name: str, value: Any) -> datetime:
    return parse_time(name, _string(name, value))


def _object(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(name, "a JSON object", value)
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(name, "true or false", value)
    return value


def _string_list(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _wrong_type(name, "an array of strings", value)
    return tuple(value)


KEY_FIELDS: Mapping[str, Parser] = {
    "name": _string,
    "translation": _string,
    "owner": _string,
    "metadata": _object,
    "expires_at": _timestamp,
    "allowed_models": _string_list,
    "allowed_ips": _string_list,
    "rpm": _integer,
    "tpm": _integer,
    "rpd": _integer,
    "max_concurrent": _integer,
    "budget_total_usd": _money,
    "budget_period": _string,
    "budget_period_usd": _money,
    "allowed_passthrough": _string_list,
    "store_conversations": _boolean,
}


def key_arguments(body: bytes, *, partial: bool) -> dict[str, Any]:
    """The repository arguments a create (`partial=False`) or update body asks for.

    In an update, null clears a field; in a create, null is the same as leaving it out.
    """
    document = _json_object(body)
    unknown = sorted(set(document) - set(KEY_FIELDS))
    if unknown:
        raise invalid(unknown[0], f"Unknown field {unknown[0]!r}; known fields: "
                      + ", ".join(KEY_FIELDS))
    if not partial and not isinstance(document.get("name"), str):
        raise invalid("name", "name is required and must be a string")
    if partial and not document:
        raise InvalidRequest("The body names no field to change.")
    return {
        field: None if value is None else KEY_FIELDS[field](field, value)
        for field, value in document.items()
    }


def parse_time(name: str, text: str) -> datetime:
    """An ISO 8601 time with a zone ("2030-01-01T00:00:00Z") or a date, meaning its UTC start."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(name, f"{name} must be an ISO 8601 time, not {text!r}") from None
    if moment.tzinfo is None:
        raise invalid(name, f"{name} must carry a time zone, like {text}Z")
    return moment.astimezone(UTC)


def dump_json(document: Any) -> bytes:
    # Z rather than +00:00: what RFC 3339 readers and people both expect of UTC.
    return orjson.dumps(document, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


def invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, violations={field: message})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body or b"null")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return document


def _wrong_type(name: str, expected: str, value: Any) -> InvalidRequest:
    got = "null" if value is None else type(value).__name__
    return invalid(name, f"{name} must be {expected}, not {got}")
