"""What a web search the upstream ran for the model found, and where the answer cites it.

A search tool runs inside the upstream (Gemini's Google Search, Anthropic's web search), so the
caller never calls it: the answer comes back with the queries that were run and the sources
its text rests on. Offsets count characters (code points) of the candidate's whole text, the
concatenation of its text parts; each upstream's own units are converted when it is read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Citation:
    start: int  # first character of the cited span, inclusive
    end: int  # exclusive
    url: str
    title: str = ""
    # How sure the gateway is that the span rests on the page (0..1); None when the upstream's
    # model cited the page itself and gave no score.
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Grounding:
    queries: tuple[str, ...] = ()  # the searches run, in order
    citations: tuple[Citation, ...] = ()
    # The pages the model was given, cited or not, in the order it saw them; empty where the
    # upstream reports only the pages its answer cites.
    pages: tuple[Page, ...] = ()
