"""The Requests page: the recent usage records, newest first, filtered, a page at a time.

Paging is by id (`before=` the last id shown), so an old page costs what the first does. A
record holds no prompt and no key, only the key's id; the page shows nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from cometgate.console.rendering import render
from cometgate.console.session import Session
from cometgate.console.usage_query import BadQuery, key_id
from cometgate.storage.usage_rollups import RecordStatus, UsageRollups

PAGE_SIZE = 50
STATUSES: tuple[RecordStatus, ...] = ("ok", "error")
_KNOWN = frozenset({"key_id", "model", "provider", "status", "before"})


@dataclass(frozen=True, slots=True)
class RequestsPage:
    usage: UsageRollups

    async def page(self, request: Request, session: Session) -> Response:
        try:
            filters, before = requests_query(request.query_params)
        except BadQuery as exc:
            return render("missing.html", session, status=400, what=str(exc))
        records = list(await self.usage.recent(limit=PAGE_SIZE + 1, before_id=before,
                                               **filters))
        more = len(records) > PAGE_SIZE
        records = records[:PAGE_SIZE]
        last = records[-1].id if records and more else None
        shown = {k: v for k, v in filters.items() if v is not None}
        older = f"?{urlencode({**shown, 'before': last})}" if last is not None else None
        return render("requests.html", session, records=records, filters=filters,
                      older=older, newest=f"?{urlencode(shown)}", statuses=STATUSES,
                      paged=before is not None)


def requests_query(params: Mapping[str, str]) -> tuple[dict[str, Any], int | None]:
    unknown = sorted(set(params) - _KNOWN)
    if unknown:
        raise BadQuery(f"Unknown query parameter {unknown[0]!r}.")
    status = next((s for s in STATUSES if s == params.get("status")), None)
    if params.get("status") and status is None:
        raise BadQuery("status must be ok or error.")
    before = params.get("before")
    if before and not (before.isascii() and before.isdigit() and len(before) <= 18):
        raise BadQuery(f"before must be a record id, not {before!r}.")
    filters = {"key_id": key_id(params.get("key_id")), "model": params.get("model") or None,
               "provider": params.get("provider") or None, "status": status}
    return filters, int(before) if before else None
