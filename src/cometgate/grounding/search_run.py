"""One call's emulated Google Search grounding, from the search to the grounded answer:

    prepared(request)      run the search (once per call, whatever the attempts), and give
                           the model the sources
    grounded(response)     the answer with its groundingMetadata and its searches counted
    grounded_events(...)   the same for a stream: grounding on each candidate's finish (as
                           Google sends it), searches added to the usage reported

A backend that fails leaves the answer ungrounded (`failed` tells the pipeline to report the
caller's search tool as dropped); it never holds the answer longer than its own timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import replace

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    GenerateRequest,
    GenerateResponse,
    Grounding,
    PartDelta,
    StreamEvent,
    TextPart,
    UsageReported,
)
from cometgate.grounding.emulated_search import (
    Source,
    answer_grounding,
    numbered,
    prompt_query,
    with_sources,
)
from cometgate.grounding.search_backends import SearchBackend, SearchFailed, SearchResult

_log = logging.getLogger(__name__)


class SearchRun:
    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self._lock = asyncio.Lock()
        self._ran = False
        self.queries: tuple[str, ...] = ()  # the searches the backend answered
        self.sources: tuple[Source, ...] = ()
        self.failed = False

    async def prepared(self, request: GenerateRequest) -> GenerateRequest:
        async with self._lock:
            if not self._ran:
                self._ran = True
                await self._search(request)
        if not self.sources:
            return replace(request, web_search=None)
        return with_sources(request, self.queries, self.sources)

    def grounded(self, response: GenerateResponse) -> GenerateResponse:
        if not self.queries:
            return response
        candidates = tuple(replace(c, grounding=self._grounding(_text(c)))
                           for c in response.candidates)
        usage = replace(response.usage, searches=response.usage.searches + len(self.queries))
        return replace(response, candidates=candidates, usage=usage)

    async def grounded_events(
        self, events: AsyncGenerator[StreamEvent, None]
    ) -> AsyncGenerator[StreamEvent, None]:
        """`events` with grounding and searches added; closing this closes them."""
        texts: dict[int, list[str]] = {}
        try:
            async for event in events:
                yield self._with_grounding(event, texts)
        finally:
            await events.aclose()

    def _with_grounding(self, event: StreamEvent, texts: dict[int, list[str]]) -> StreamEvent:
        if not self.queries:
            return event
        match event:
            case PartDelta(part=TextPart(text=text), index=index):
                texts.setdefault(index, []).append(text)
            case CandidateFinished(index=index):
                answer = "".join(texts.get(index, ()))
                return replace(event, grounding=self._grounding(answer))
            case UsageReported(usage=usage):
                return UsageReported(replace(usage, searches=usage.searches + len(self.queries)))
        return event

    def _grounding(self, answer: str) -> Grounding:
        return answer_grounding(answer, self.queries, self.sources)

    async def _search(self, request: GenerateRequest) -> None:
        query = prompt_query(request)
        if query is None:
            return
        settings = self._backend.settings
        results: list[SearchResult] = []
        try:
            results = await self._backend.search(query)
        except SearchFailed as exc:
            self.failed = True
            _log.warning("the %s search backend failed; answering without grounding: %s",
                         settings.kind, exc)
            return
        self.queries = (query,)
        self.sources = numbered(results, settings.max_results * settings.max_queries)


def _text(candidate: Candidate) -> str:
    return "".join(p.text for p in candidate.parts if isinstance(p, TextPart))

