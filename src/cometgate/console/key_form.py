"""The key form's fields → the admin API's key arguments, through the admin API's own parser.

A form sends text only; this module turns each field into the JSON value the admin API takes
(lists from lines, numbers, money as text, the checkbox as a boolean, metadata as JSON) and then
hands the document to `admin_requests.key_arguments`, so the console accepts and refuses
exactly what POST/PATCH /admin/keys do, with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cometgate.api.admin_requests import invalid, key_arguments
from cometgate.storage.key_records import KeyRecord

LIST_FIELDS = ("allowed_models", "allowed_ips", "allowed_passthrough")
INTEGER_FIELDS = ("rpm", "tpm", "rpd", "max_concurrent")
TEXT_FIELDS = ("name", "owner", "translation", "budget_period", "budget_total_usd",
               "budget_period_usd")
CHECKBOX = "store_conversations"
FORM_FIELDS = (*TEXT_FIELDS, *LIST_FIELDS, *INTEGER_FIELDS, "expires_at", "metadata", CHECKBOX)


def arguments_from_form(form: Mapping[str, str], *, partial: bool) -> dict[str, Any]:
    """Repository arguments for a create (`partial=False`: blank fields are left out) or an
    edit (every field is on the form, so a blank one clears its value)."""
    document: dict[str, Any] = {}
    for name in FORM_FIELDS:
        value = _value(name, form)
        if value is not None or partial:
            document[name] = value
    return key_arguments(orjson.dumps(document), partial=partial)


def form_values(record: KeyRecord | None) -> dict[str, str]:
    """What the edit form shows for a key (blank for a new one)."""
    if record is None:
        return {CHECKBOX: "on"}
    values = {name: "" if getattr(record, name) is None else str(getattr(record, name))
              for name in (*TEXT_FIELDS, *INTEGER_FIELDS)}
    values.update({name: "\n".join(getattr(record, name)) for name in LIST_FIELDS})
    values["expires_at"] = "" if record.expires_at is None else \
        record.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    values["metadata"] = orjson.dumps(record.metadata).decode() if record.metadata else ""
    values[CHECKBOX] = "on" if record.store_conversations else ""
    return values


def _value(name: str, form: Mapping[str, str]) -> Any:
    if name == CHECKBOX:
        return form.get(name) == "on"
    text = form.get(name, "").strip()
    if name in LIST_FIELDS:
        items = [item.strip() for line in text.splitlines() for item in line.split(",")
                 if item.strip()]
        return items or None
    if not text:
        return None
    if name in INTEGER_FIELDS:
        if not (text.isascii() and text.lstrip("-").isdigit() and len(text) < 20):
            raise invalid(name, f"{name} must be a whole number, not {text!r}")
        return int(text)
    if name == "expires_at":
        return _expiry(text)
    if name == "metadata":
        return _metadata(text)
    return text


def _expiry(text: str) -> str:
    # A datetime-local input sends "2030-01-01T12:00" with no zone; the form labels it UTC.
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid("expires_at", f"expires_at must be a date and time, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _metadata(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise invalid("metadata", "metadata must be a JSON object, like {\"team\": \"search\"}"
                      ) from None
