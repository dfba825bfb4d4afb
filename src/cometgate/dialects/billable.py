"""What a request asks for that the upstream bills beyond one answer's tokens: more than one
candidate, a search or another built-in tool, a cached context, a dearer service tier.

Each caller dialect reads these from the caller's own document (`billable.py` in its folder),
before anything is decoded, for two uses at admission: the budget reservation covers every
candidate, the searches and the tier asked for; and a key with a budget or a strict
translation policy is refused the fields its operator has not allowed it (billable_policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# More candidates than any upstream serves; a larger count is refused by the decoder or the
# upstream, and counting beyond it would only inflate the reservation's arithmetic.
MAX_COUNTED_CANDIDATES = 1000


class BillableKind(StrEnum):
    BUILTIN_TOOL = "built-in tool"
    CACHED_CONTENT = "cached content"
    SERVICE_TIER = "service tier"
    CANDIDATES = "candidates"


@dataclass(frozen=True, slots=True)
class BillableField:
    path: str  # where the caller put it, in its own spelling: "tools[1].google_search"
    name: str  # what an operator allows it by: "googleSearch" (storage.key_policy)
    kind: BillableKind


@dataclass(frozen=True, slots=True)
class Billable:
    candidates: int = 1
    search: bool = False  # a search-grounding tool is offered to the model
    service_tier: str | None = None  # as asked for; None: the upstream's default
    # The most of the gateway's own work the request may need (URL-context pages to fetch,
    # sandbox seconds, images to generate), so the reservation covers it.
    page_fetches: int = 0
    sandbox_seconds: float = 0.0
    images: int = 0
    fields: tuple[BillableField, ...] = ()


NOTHING_BILLABLE = Billable()


def candidate_count(value: object) -> int | None:
    """A count of candidates as a caller may write it (1, 2.0), or None when it is no count
    (the decoder refuses it later with the dialect's own message)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (value.is_integer() and value >= 1):
        return None
    count = int(min(value, MAX_COUNTED_CANDIDATES))
    return count if count >= 1 else None
