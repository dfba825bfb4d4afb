"""Google Search grounding done by the gateway for a model whose upstream cannot search: what
to search for, how the results reach the model, and where its answer rests on them.

- The query is the caller's last question (the last user turn's text), as a person would type
  it into a search box: one line, at most `MAX_QUERY_CHARS`.
- The results become numbered sources in a system block that asks the model to cite them as
  [n] after the sentences that use them.
- The answer is cut into sentences; a sentence cites the sources it names as [n] (confidence
  1.0, as the model said so), or else those whose words it shares most (confidence: the share
  of the sentence's words found in the source), so that a model too small to cite still gets
  grounding supports that point at the sentences the sources back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cometgate.canonical import Citation, GenerateRequest, Grounding, Page, TextPart
from cometgate.grounding.search_backends import SearchResult

MAX_QUERY_CHARS = 200
# A sentence rests on a source when this share of its words appear there, and at least
# `_MIN_SHARED` of them: a looser match would cite pages for sentences they do not back.
_MIN_SHARE = 0.35
_MIN_SHARED = 2
_MAX_SOURCES_PER_SENTENCE = 2
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+(?:\s*\[\d+\])*|$)", re.MULTILINE)
_MARKER = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"\w{3,}")
# Words too common to show that a sentence and a page speak of the same thing.
_COMMON = frozenset("""
the and for are but not you all any can had her was one our out has his how its may new now
old see two who did get let put say she too use that with have this will your from they know
want been good much some time very when come here just like long make many more only over
such take than them well were what which while would there their these those about after
into also most other could should where does being because between through during before
""".split())


@dataclass(frozen=True, slots=True)
class Source:
    number: int  # as the model sees it: [1], [2], …
    result: SearchResult


def prompt_query(request: GenerateRequest) -> str | None:
    """The text of the last user turn on one line, cut at a word; None when it has none."""
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        text = " ".join(p.text for p in message.parts if isinstance(p, TextPart))
        line = " ".join(text.split())
        if line:
            return _cut(line, MAX_QUERY_CHARS)
    return None


def numbered(results: Sequence[SearchResult], limit: int) -> tuple[Source, ...]:
    """Results of every search, each page once, numbered from 1."""
    seen: dict[str, SearchResult] = {}
    for result in results:
        seen.setdefault(result.url, result)
    return tuple(Source(n, r) for n, r in enumerate(list(seen.values())[:limit], start=1))


def with_sources(request: GenerateRequest, queries: Sequence[str],
                 sources: Sequence[Source]) -> GenerateRequest:
    """The request the model answers: its own system text, then the sources; the web search
    it asked for is done, so no upstream is asked to run one."""
    block = sources_block(queries, sources)
    return replace(request, system=(*request.system, TextPart(block)), web_search=None)


def sources_block(queries: Sequence[str], sources: Sequence[Source]) -> str:
    searched = "; ".join(f'"{q}"' for q in queries)
    lines = [f"Web search results for {searched}:"]
    for source in sources:
        lines.append(f"[{source.number}] {source.result.title}\nURL: {source.result.url}")
        if source.result.snippet:
            lines.append(source.result.snippet)
    lines.append(
        "Use these sources where they help answer. After each sentence that uses a source, "
        "cite it by its number in square brackets, for example [1].")
    return "\n".join(lines)


def answer_grounding(answer: str, queries: Sequence[str],
                     sources: Sequence[Source]) -> Grounding:
    citations: list[Citation] = []
    for start, end in sentence_spans(answer):
        citations.extend(_sentence_citations(answer, start, end, sources))
    pages = tuple(Page(s.result.url, s.result.title) for s in sources)
    return Grounding(tuple(queries), tuple(citations), pages)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, in characters, without the whitespace around it; a
    sentence keeps the [n] markers that follow its end."""
    spans: list[tuple[int, int]] = []
    for match in _SENTENCE.finditer(text):
        piece = match.group()
        start = match.start() + len(piece) - len(piece.lstrip())
        end = match.end() - (len(piece) - len(piece.rstrip()))
        if end > start:
            spans.append((start, end))
    return spans


def _sentence_citations(answer: str, start: int, end: int,
                        sources: Sequence[Source]) -> list[Citation]:
    sentence = answer[start:end]
    by_number = {source.number: source for source in sources}
    named = [by_number[n] for n in dict.fromkeys(int(m) for m in _MARKER.findall(sentence))
             if n in by_number]
    if named:
        return [Citation(start, end, s.result.url, s.result.title) for s in named]
    words = _words(_MARKER.sub(" ", sentence))
    if not words:
        return []
    scored = sorted(((_share(words, source), source) for source in sources),
                    key=lambda pair: -pair[0][0])
    return [Citation(start, end, source.result.url, source.result.title, round(share, 2))
            for (share, shared), source in scored[:_MAX_SOURCES_PER_SENTENCE]
            if share >= _MIN_SHARE and shared >= _MIN_SHARED]


def _share(words: set[str], source: Source) -> tuple[float, int]:
    shared = len(words & _words(f"{source.result.title} {source.result.snippet}"))
    return shared / len(words), shared


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


def _cut(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    head = line[:limit]
    return head.rsplit(" ", 1)[0] if " " in head else head
