"""The pipeline's URL-context step, for an attempt whose upstream cannot read pages itself:
before the attempt, the pages the prompt names are fetched and put in the request; after
it, the answer carries their `url_metadata` (on each candidate, or on each candidate's
finish event of a stream) and its usage counts the pages fetched.

The pages are fetched at most once per call, whichever attempts (failover) need them: a
second attempt reuses the first one's pages rather than fetching them again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from typing import Protocol

from cometgate.canonical import (
    CandidateFinished,
    GenerateRequest,
    GenerateResponse,
    StreamEvent,
    Usage,
    UsageReported,
)
from cometgate.grounding.fetch import FetchedPage, FetchFailure
from cometgate.grounding.url_context import UrlContextRead, read_urls, with_pages


class UrlReader(Protocol):
    """What fetches pages for URL context (grounding.fetch.PageFetcher)."""

    max_urls: int

    async def fetch(self, url: str) -> FetchedPage | FetchFailure: ...


class UrlContextStep:
    """One call's URL context."""

    def __init__(self, reader: UrlReader) -> None:
        self._reader = reader
        self._read: UrlContextRead | None = None

    async def prepared(self, request: GenerateRequest
                       ) -> tuple[GenerateRequest, UrlContextRead]:
        """The request with the pages' text in it, and what was read. Attempts run one after
        another (the next once this one has ended), so the first one's read is kept for the
        rest; a cancelled attempt is a cancelled call, and its fetches end with it."""
        if self._read is None:
            self._read = await read_urls(request, self._reader.fetch, self._reader.max_urls)
        return with_pages(request, self._read), self._read


def answer_with_pages(response: GenerateResponse, read: UrlContextRead) -> GenerateResponse:
    metadata = read.metadata
    candidates = tuple(replace(c, url_metadata=metadata) for c in response.candidates)
    return replace(response, candidates=candidates, usage=_counted(response.usage, read))


async def stream_with_pages(events: AsyncGenerator[StreamEvent, None], read: UrlContextRead
                            ) -> AsyncGenerator[StreamEvent, None]:
    """Closing this closes `events` (and so the upstream exchange)."""
    async with aclosing(events):
        async for event in events:
            if isinstance(event, CandidateFinished):
                event = replace(event, url_metadata=read.metadata)
            elif isinstance(event, UsageReported):
                event = UsageReported(_counted(event.usage, read))
            yield event


def _counted(usage: Usage, read: UrlContextRead) -> Usage:
    return replace(usage, fetched_pages=usage.fetched_pages + read.fetched_pages)

