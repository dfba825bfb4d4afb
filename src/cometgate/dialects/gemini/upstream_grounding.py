"""A Gemini candidate's `groundingMetadata` (Google Search grounding) → canonical Grounding.

Read: `webSearchQueries`, `groundingChunks[].web{uri,title}` and
`groundingSupports[].{segment{startIndex,endIndex}, groundingChunkIndices}`: one citation per
support and chunk it names. Google counts a segment's offsets in bytes of the UTF-8 text of the
whole candidate (proto3 leaves a 0 start out); canonical offsets count characters, so they are
converted against that text. Chunks that are not web pages (retrieved context, maps) and
indices that name no chunk are skipped: they cite nothing a caller could open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.canonical import Citation, Grounding


def grounding_of(metadata: object, text: str) -> Grounding | None:
    """None when `metadata` is not grounding metadata or names neither queries nor sources."""
    if not isinstance(metadata, dict):
        return None
    queries = tuple(q for q in _list(metadata, "webSearchQueries") if isinstance(q, str))
    pages = [_page(chunk) for chunk in _list(metadata, "groundingChunks")]
    encoded = text.encode()
    citations: list[Citation] = []
    for support in _list(metadata, "groundingSupports"):
        if not isinstance(support, dict) or not isinstance(support.get("segment"), dict):
            continue
        segment: Mapping[str, Any] = support["segment"]
        start = _characters(encoded, segment.get("startIndex", 0))
        end = _characters(encoded, segment.get("endIndex", 0))
        for index in _list(support, "groundingChunkIndices"):
            page = pages[index] if isinstance(index, int) and 0 <= index < len(pages) else None
            if page is not None and end > start:
                citations.append(Citation(start, end, *page))
    if not queries and not citations:
        return None
    return Grounding(queries, tuple(citations))


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    return value if isinstance(value, list) else []


def _page(chunk: object) -> tuple[str, str] | None:
    web = chunk.get("web") if isinstance(chunk, dict) else None
    uri = web.get("uri") if isinstance(web, dict) else None
    if not isinstance(uri, str) or not uri:
        return None
    title = web.get("title") if isinstance(web, dict) else None
    return uri, title if isinstance(title, str) else ""


def _characters(encoded: bytes, offset: object) -> int:
    """The character offset of byte `offset`; an offset inside a character counts the
    character as before it, and one past the end is the end."""
    if not isinstance(offset, int) or isinstance(offset, bool) or offset <= 0:
        return 0
    return len(encoded[:offset].decode("utf-8", "ignore"))
