"""URL context for an upstream that cannot read pages itself: the URLs the caller's turns
name are fetched, and their text is given to the model in a system block; the answer then
carries one `UrlMetadata` per URL, in the prompt's order (Google's `urlMetadata`).

At most `max_urls` URLs are read (Google's limit is 20 per request); any beyond are
reported as ERROR without being fetched. The pages are fetched concurrently, each within the
fetcher's own bounds, so the step ends within one page's timeout.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from cometgate.canonical import GenerateRequest, TextPart, UrlMetadata, UrlRetrieval
from cometgate.grounding.fetch import FetchedPage, FetchFailure

Fetch = Callable[[str], Awaitable[FetchedPage | FetchFailure]]

_URL = re.compile(r"https?://[^\s<>\"'`{}|\\^]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"\u201d\u2019\u00bb"  # closing quotes too
_OPENERS = {")": "(", "]": "["}
_HEADER = ("URL context: the gateway read the pages at the URLs named in this conversation. "
           "Answer from their text where it helps.")


@dataclass(frozen=True, slots=True)
class UrlContextRead:
    results: tuple[FetchedPage | FetchFailure, ...]

    @property
    def metadata(self) -> tuple[UrlMetadata, ...]:
        return tuple(UrlMetadata(r.url, UrlRetrieval.SUCCESS if isinstance(r, FetchedPage)
                                 else r.status) for r in self.results)

    @property
    def fetched_pages(self) -> int:
        """Pages read and given to the model: what URL context bills."""
        return sum(isinstance(r, FetchedPage) for r in self.results)


def urls_in(request: GenerateRequest) -> list[str]:
    """The http(s) URLs in the text of the caller's turns, first mention first, once each."""
    found: dict[str, None] = {}
    for message in request.messages:
        if message.role != "user":
            continue
        for part in message.parts:
            if isinstance(part, TextPart):
                found.update((_trimmed(m.group()), None) for m in _URL.finditer(part.text))
    return [url for url in found if url.partition("://")[2]]


async def read_urls(request: GenerateRequest, fetch: Fetch, max_urls: int) -> UrlContextRead:
    urls = urls_in(request)
    fetched = await asyncio.gather(*(fetch(url) for url in urls[:max_urls]))
    skipped = [FetchFailure(url, UrlRetrieval.ERROR, f"only {max_urls} URLs are read")
               for url in urls[max_urls:]]
    return UrlContextRead((*fetched, *skipped))


def with_pages(request: GenerateRequest, read: UrlContextRead) -> GenerateRequest:
    """The request with the pages' text in a system block after the caller's own system
    text; the URL context tool itself is consumed here and goes no further."""
    if not read.results:
        return replace(request, url_context=False)
    block = "\n\n".join([_HEADER, *(_section(result) for result in read.results)])
    return replace(request, system=(*request.system, TextPart(block)), url_context=False)


def _section(result: FetchedPage | FetchFailure) -> str:
    if isinstance(result, FetchFailure):
        return f"The page at {result.url} could not be read: {result.reason}."
    title = f"\nTitle: {result.title}" if result.title else ""
    cut = "\n(The page is longer; this is its beginning.)" if result.truncated else ""
    return (f"<page url=\"{result.url}\">{title}\n{result.text}{cut}\n</page>")


def _trimmed(url: str) -> str:
    """A URL without the punctuation that ends the sentence around it; a closing bracket
    stays when the URL opened one (Wikipedia's "Foo_(bar)")."""
    while url:
        last = url[-1]
        opener = _OPENERS.get(last)
        if last in _TRAILING or (opener is not None and url.count(opener) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url
