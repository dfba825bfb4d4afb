"""Which billable fields (dialects/billable.py) a key may send.

A key with a budget, or whose translation policy is strict, has asked the gateway to account
for what it spends; fields the upstream bills beyond the tokens the gateway reserves would
pass that accounting by unchecked. Such a key is refused them — a 400 in the caller's dialect
naming the field and why — unless its operator allowed them (`allowed_passthrough`). More
candidates are allowed up to `max_candidates` (they are reserved for: each one's output
counts), and a standard service tier (`auto`, `default`) is not billable at all. Other keys
send what they like; their reservations still cover candidates, searches and tiers.
"""

from __future__ import annotations

from cometgate.dialects.billable import Billable, BillableField, BillableKind
from cometgate.errors import InvalidRequest
from cometgate.storage.keys import KeyRecord

_REASONS = {
    BillableKind.BUILTIN_TOOL: "the upstream bills built-in tools beyond the tokens the gateway "
                               "reserves for a request",
    BillableKind.CACHED_CONTENT: "a cached context is billed for the time it is kept, "
                                 "beyond the tokens the gateway reserves for a request",
    BillableKind.SERVICE_TIER: "a service tier other than auto or default is billed above the "
                               "standard rate",
}


def check_billable(
    key: KeyRecord, model_translation: str, billable: Billable, *, max_candidates: int
) -> None:
    """Raise InvalidRequest for the first billable field `key` may not send to a model whose
    translation policy is `model_translation` (the key's own policy overrides it)."""
    if not billable.fields:
        return
    restricted_by = _restriction(key, model_translation)
    if restricted_by is None:
        return
    for field in billable.fields:
        if field.name in key.allowed_passthrough:
            continue
        if field.kind is BillableKind.CANDIDATES:
            if billable.candidates <= max_candidates:
                continue
            reason = (f"{billable.candidates} candidates exceed the {max_candidates} a key may "
                      "ask for")
        else:
            reason = _REASONS[field.kind]
        raise _refusal(field, restricted_by, reason)


def _restriction(key: KeyRecord, model_translation: str) -> str | None:
    if key.budgeted:
        return "has a budget"
    if (key.translation or model_translation) == "strict":
        return "has a strict translation policy"
    return None


def _refusal(field: BillableField, restricted_by: str, reason: str) -> InvalidRequest:
    message = (
        f"{field.path} is not allowed for this API key, which {restricted_by}: {reason}. "
        f"The gateway's operator can allow it for this key (allowed_passthrough: {field.name})."
    )
    return InvalidRequest(message, violations={field.path: reason})
