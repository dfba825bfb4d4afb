"""OpenAI's web search in Chat Completions (its search models: gpt-4o-search-preview, …): what
is sent for a canonical web search, and how its answer is read into canonical Grounding.

Sent: `web_search_options: {}` (the upstream's default search context size). Read, whole or
streamed: the message's (or a delta's) `annotations`, each `{"type": "url_citation",
"url_citation": {start_index, end_index, url, title}}` (a flat object is read too), whose
offsets count characters of the message's content, as canonical offsets do. OpenAI reports no
queries and bills one search per request that asked for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.canonical import Citation, GenerateRequest, Grounding


def search_options(request: GenerateRequest) -> dict[str, Any]:
    return {"web_search_options": {}} if request.web_search is not None else {}


def url_citations(annotations: object) -> list[Citation]:
    found: list[Citation] = []
    for annotation in annotations if isinstance(annotations, list) else []:
        if not isinstance(annotation, Mapping) or annotation.get("type") != "url_citation":
            continue
        inner = annotation.get("url_citation")
        cited: Mapping[str, Any] = inner if isinstance(inner, Mapping) else annotation
        start, end, url = cited.get("start_index"), cited.get("end_index"), cited.get("url")
        if (isinstance(start, int) and isinstance(end, int) and isinstance(url, str)
                and 0 <= start < end):
            title = cited.get("title")
            found.append(Citation(start, end, url, title if isinstance(title, str) else ""))
    return found


def grounding_of(citations: list[Citation], request: GenerateRequest) -> Grounding | None:
    """The grounding of an answer to a request that asked for a search; None where nothing
    is cited (OpenAI names no queries, so there is nothing else to show)."""
    if request.web_search is None or not citations:
        return None
    return Grounding((), tuple(citations))


def searches(request: GenerateRequest) -> int:
    return 1 if request.web_search is not None else 0
