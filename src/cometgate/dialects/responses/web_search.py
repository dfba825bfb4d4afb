"""A web search the upstream ran (canonical Grounding) → the Responses API's output: one
`web_search_call` item per query (its action a "search"; with `sources` when `include` names
"web_search_call.action.sources"), and `url_citation` annotations on the message text they cite.

Canonical citation offsets count characters of the candidate's whole text; a message holds
a stretch of it, so each annotation is placed on the message holding its start, with offsets
relative to that message's text (and cut at its end). OpenAI counts `start_index`/`end_index`
in characters too.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cometgate.canonical import Grounding

SOURCES = "web_search_call.action.sources"
WEB_SEARCH_TYPES = ("web_search", "web_search_preview", "web_search_2025_08_26",
                    "web_search_preview_2025_03_11")


def search_items(grounding: Grounding, response_id: str, status: str,
                 include: tuple[str, ...]) -> list[dict[str, Any]]:
    """The items of the searches, in the order they ran; a search that named no query (an
    upstream may report sources only) is one item with an empty query."""
    sources = _sources(grounding) if SOURCES in include else None
    return [search_item(search_id(response_id, number), query, status, sources)
            for number, query in enumerate(grounding.queries or ("",))]


def search_item(item: str, query: str, status: str,
                sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "search", "query": query}
    if sources is not None:
        action["sources"] = sources
    return {"id": item, "type": "web_search_call", "status": status, "action": action}


def search_id(response_id: str, number: int) -> str:
    """The same id for the same search of the same response, whole or streamed."""
    return "ws_" + hashlib.sha256(f"{response_id}/search/{number}".encode()).hexdigest()[:48]


def citations_of(grounding: Grounding | None, start: int, text: str) -> list[dict[str, Any]]:
    """The url_citation annotations of the message whose text begins at character `start` of
    the candidate's text."""
    if grounding is None:
        return []
    end = start + len(text)
    return [{"type": "url_citation", "start_index": citation.start - start,
             "end_index": min(citation.end, end) - start, "url": citation.url,
             "title": citation.title}
            for citation in grounding.citations if start <= citation.start < end]


def _sources(grounding: Grounding) -> list[dict[str, Any]]:
    urls = dict.fromkeys(citation.url for citation in grounding.citations)
    return [{"type": "url", "url": url} for url in urls]
