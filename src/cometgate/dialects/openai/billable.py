"""What a Chat Completions request asks for that the upstream bills beyond one answer's
tokens (see dialects/billable.py): `n` choices, a `service_tier` other than the standard one,
and `web_search_options` (search models bill each search)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.dialects.billable import Billable, BillableField, BillableKind, candidate_count

STANDARD_TIERS = frozenset({"auto", "default"})


def billable(document: Mapping[str, Any]) -> Billable:
    fields: list[BillableField] = []
    candidates = candidate_count(document.get("n")) or 1
    if candidates > 1:
        fields.append(BillableField("n", "n", BillableKind.CANDIDATES))
    tier = document.get("service_tier")
    tier = tier if isinstance(tier, str) and tier else None
    if tier is not None and tier not in STANDARD_TIERS:
        fields.append(BillableField("service_tier", "service_tier", BillableKind.SERVICE_TIER))
    if document.get("web_search_options") is not None:
        fields.append(BillableField("web_search_options", "web_search_options",
                                    BillableKind.BUILTIN_TOOL))
    return Billable(candidates=candidates, service_tier=tier, fields=tuple(fields))
