"""One call's emulated Google Search grounding, from the search to the grounded answer:

    prepared(request)      decide the queries (the model writes them where it can call
                           tools, see search_queries; else the caller's question), run them
                           (once per call, whatever the attempts), give the model the sources
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
    Usage,
    UsageReported,
)
from cometgate.errors import RequestRejected, UpstreamError
from cometgate.grounding.emulated_search import (
    Source,
    answer_grounding,
    numbered,
    prompt_query,
    with_sources,
)
from cometgate.grounding.search_backends import SearchBackend, SearchFailed, SearchResult
from cometgate.grounding.search_queries import (
    Generate,
    added,
    planned_queries,
    planning_request,
)

_log = logging.getLogger(__name__)


class SearchRun:
    """Shared by a call's attempts: the search runs once, with the first attempt's upstream
    writing the queries, and a later attempt gets the same sources."""

    def __init__(self, backend: SearchBackend) -> None:
        self._backend = backend
        self._lock = asyncio.Lock()
        self._ran = False
        self.queries: tuple[str, ...] = ()  # the searches the backend answered
        self.sources: tuple[Source, ...] = ()
        self.failed = False
        self._plan_usage: Usage | None = None  # the tokens of the model's query planning

    async def prepared(self, request: GenerateRequest,
                       plan: Generate | None = None) -> GenerateRequest:
        """`plan`: a generation on the upstream that will answer, for a model that can call
        tools to write its queries; None to search for the caller's question."""
        async with self._lock:
            if not self._ran:
                self._ran = True
                await self._search(request, plan)
        if not self.sources:
            return replace(request, web_search=None)
        return with_sources(request, self.queries, self.sources)

    def grounded(self, response: GenerateResponse) -> GenerateResponse:
        usage = self._usage(response.usage)
        if not self.queries:
            return replace(response, usage=usage)
        candidates = tuple(replace(c, grounding=self._grounding(_text(c)))
                           for c in response.candidates)
        return replace(response, candidates=candidates, usage=usage)

    def _usage(self, usage: Usage) -> Usage:
        """The answer's usage with the plan's tokens and the searches that ran."""
        if self._plan_usage is not None:
            usage = added(self._plan_usage, usage)
        return replace(usage, searches=usage.searches + len(self.queries))

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
        if isinstance(event, UsageReported):
            return UsageReported(self._usage(event.usage))
        if not self.queries:
            return event
        match event:
            case PartDelta(part=TextPart(text=text), index=index):
                texts.setdefault(index, []).append(text)
            case CandidateFinished(index=index):
                answer = "".join(texts.get(index, ()))
                return replace(event, grounding=self._grounding(answer))
        return event

    def _grounding(self, answer: str) -> Grounding:
        return answer_grounding(answer, self.queries, self.sources)

    async def _search(self, request: GenerateRequest, plan: Generate | None) -> None:
        settings = self._backend.settings
        queries = await self._planned(request, plan) if plan is not None else ()
        if not queries:
            query = prompt_query(request)
            queries = (query,) if query is not None else ()
        if not queries:
            return
        answers = await asyncio.gather(*(self._one(query) for query in queries))
        found = [(query, results) for query, results in zip(queries, answers, strict=True)
                 if results is not None]
        self.failed = not found
        self.queries = tuple(query for query, _ in found)
        pages = [result for _, results in found for result in results]
        self.sources = numbered(pages, settings.max_results * settings.max_queries)

    async def _planned(self, request: GenerateRequest, plan: Generate) -> tuple[str, ...]:
        """The model's own queries; none when it wrote none or its upstream refused."""
        limit = self._backend.settings.max_queries
        try:
            response = await plan(planning_request(request, limit))
        except (UpstreamError, RequestRejected) as exc:
            _log.info("no search queries from the model (%s); searching for the question",
                      exc.message)
            return ()
        self._plan_usage = response.usage
        return planned_queries(response, limit)

    async def _one(self, query: str) -> list[SearchResult] | None:
        try:
            return await self._backend.search(query)
        except SearchFailed as exc:
            _log.warning("the %s search backend failed; answering without its results: %s",
                         self._backend.settings.kind, exc)
            return None

def _text(candidate: Candidate) -> str:
    return "".join(p.text for p in candidate.parts if isinstance(p, TextPart))

