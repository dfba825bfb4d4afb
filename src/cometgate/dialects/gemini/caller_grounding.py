"""Canonical Grounding → a Gemini candidate's `groundingMetadata`, in the shape Google's API
returns for Google Search grounding (key order as Google writes it):

    searchEntryPoint.renderedContent   an HTML chip per query, for the caller to show
    groundingChunks[].web{uri,title}   each page the model was given, then any other page
                                       cited, in order of first citation
    groundingSupports[]                one per cited span of the answer:
        segment{startIndex,endIndex,text}, groundingChunkIndices, confidenceScores
    webSearchQueries                   the searches run, in order

Google counts a segment's offsets in bytes of the UTF-8 text of the candidate's text (its text
parts joined); canonical offsets count characters, so each is converted against that text,
and a start of 0 is left out as proto3 leaves out zeros. A citation the upstream's model made
itself carries no score; it is given 1.0, the score of a source the answer names outright.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote_plus

from cometgate.canonical import Citation, Grounding

_CITED_OUTRIGHT = 1.0
# Where a suggestion chip leads: the query on a web search page, as Google's chips do.
_SUGGESTION_URL = "https://www.google.com/search?q="
_CHIP_STYLE = (
    ".container{display:flex;flex-wrap:wrap;gap:8px;align-items:center;"
    "font-family:Roboto,Arial,sans-serif;font-size:14px}"
    ".chip{display:inline-block;border:1px solid #dadce0;border-radius:16px;padding:5px 16px;"
    "color:#3c4043;background:#fff;text-decoration:none;white-space:nowrap}"
    ".chip:hover{background:#f1f3f4}"
    "@media(prefers-color-scheme:dark){.chip{background:#1f1f1f;color:#e3e3e3;"
    "border-color:#5f6368}.chip:hover{background:#3c4043}}"
)


def grounding_metadata(grounding: Grounding, text: str) -> dict[str, Any]:
    """`text`: the candidate's whole answer text, which the citations' offsets point into."""
    chunks: dict[str, int] = {page.url: n for n, page in enumerate(grounding.pages)}
    titles: list[str] = [page.title for page in grounding.pages]
    spans: dict[tuple[int, int], dict[int, float]] = {}  # (start, end) → chunk → score
    for citation in grounding.citations:
        start, end = _bounded(citation, len(text))
        if start >= end:
            continue
        if citation.url not in chunks:
            chunks[citation.url] = len(chunks)
            titles.append(citation.title)
        scores = spans.setdefault((start, end), {})
        index = chunks[citation.url]
        score = _CITED_OUTRIGHT if citation.confidence is None else citation.confidence
        scores[index] = max(score, scores.get(index, 0.0))
    metadata: dict[str, Any] = {}
    if grounding.queries:
        metadata["searchEntryPoint"] = {"renderedContent": rendered_content(grounding.queries)}
    if chunks:  # proto3 leaves empty lists out
        metadata["groundingChunks"] = [{"web": {"uri": url, "title": title}}
                                       for url, title in zip(chunks, titles, strict=True)]
    if spans:
        metadata["groundingSupports"] = [_support(text, start, end, scores)
                                         for (start, end), scores in spans.items()]
    if grounding.queries:
        metadata["webSearchQueries"] = list(grounding.queries)
    return metadata


def rendered_content(queries: tuple[str, ...]) -> str:
    """The search suggestions: a small self-contained HTML block of one chip per query (each
    query escaped: it may come from the caller's prompt)."""
    chips = "".join(
        f'<a class="chip" href="{html.escape(_SUGGESTION_URL + quote_plus(query))}">'
        f"{html.escape(query)}</a>"
        for query in queries)
    return f'<style>{_CHIP_STYLE}</style><div class="container">{chips}</div>'


def _bounded(citation: Citation, length: int) -> tuple[int, int]:
    return max(0, min(citation.start, length)), max(0, min(citation.end, length))


def _support(text: str, start: int, end: int, scores: dict[int, float]) -> dict[str, Any]:
    segment: dict[str, Any] = {}
    byte_start = len(text[:start].encode())
    if byte_start:
        segment["startIndex"] = byte_start
    segment["endIndex"] = byte_start + len(text[start:end].encode())
    segment["text"] = text[start:end]
    return {"segment": segment, "groundingChunkIndices": list(scores),
            "confidenceScores": [round(score, 4) for score in scores.values()]}
