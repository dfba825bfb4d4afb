"""Anthropic's web search server tool: what is sent for a canonical web search, and how its
answer is read into canonical Grounding.

Sent: `{"type": "web_search_20250305", "name": "web_search", "max_uses": N}` (5 searches when
the request names no bound). Read, whole or streamed: each `server_tool_use` block named
web_search holds a search's `input.query`; its `web_search_tool_result` block lists the pages
(not needed: the text cites what it uses); each `text` block's `citations` of type
`web_search_result_location` cite that whole block, so a citation spans the characters the block
adds to the candidate's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cometgate.canonical import Citation, GenerateRequest, Grounding

TOOL_TYPE = "web_search_20250305"
DEFAULT_USES = 5


def search_tool(request: GenerateRequest) -> dict[str, Any] | None:
    if request.web_search is None:
        return None
    uses = request.web_search.max_uses or DEFAULT_USES
    return {"type": TOOL_TYPE, "name": "web_search", "max_uses": uses}


@dataclass(slots=True)
class Searches:
    """Collects a candidate's searches and citations as its blocks arrive, in order."""

    queries: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    written: int = 0  # characters of text so far

    def server_tool_use(self, name: object, tool_input: object) -> None:
        query = tool_input.get("query") if isinstance(tool_input, dict) else None
        if name == "web_search" and isinstance(query, str):
            self.queries.append(query)

    def text(self, text: str, citations: object) -> None:
        """A text block (or a stream's piece of one: then `citations` come with the last)."""
        start = self.written
        self.written += len(text)
        self.cited(start, citations)

    def cited(self, start: int, citations: object) -> None:
        """Citations of the text from character `start` up to what is written so far."""
        for citation in citations if isinstance(citations, list) else []:
            if (isinstance(citation, dict)
                    and citation.get("type") == "web_search_result_location"
                    and isinstance(citation.get("url"), str) and self.written > start):
                title = citation.get("title")
                self.citations.append(Citation(start, self.written, citation["url"],
                                               title if isinstance(title, str) else ""))

    def grounding(self) -> Grounding | None:
        if not self.queries and not self.citations:
            return None
        return Grounding(tuple(self.queries), tuple(self.citations))
