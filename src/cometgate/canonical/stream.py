"""Events of a streamed generation, in order: one StreamStarted, then PartDelta and
CandidateFinished events, and at most one UsageReported (usually last)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TypeAlias

from cometgate.canonical.grounding import Grounding
from cometgate.canonical.messages import Part
from cometgate.canonical.response import FinishReason, GenerateResponse, TokenLogprob, Usage
from cometgate.canonical.url_context import UrlMetadata


@dataclass(frozen=True, slots=True)
class StreamStarted:
    model_version: str
    response_id: str
    created: float
    dropped: tuple[str, ...] = ()  # as GenerateResponse.dropped


@dataclass(frozen=True, slots=True)
class PartDelta:
    """New content for one candidate. Text and reasoning parts are increments to append;
    tool calls arrive whole (a decoder assembles argument fragments first). `logprobs` are
    those of the tokens this increment adds; a delta may carry logprobs with empty text
    (tokens that produced no visible text, such as a stop sequence)."""

    part: Part
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class CandidateFinished:
    """`grounding`: what a web search found for the whole candidate, known only at its end."""

    reason: FinishReason
    index: int = 0
    grounding: Grounding | None = None
    url_metadata: tuple[UrlMetadata, ...] = ()  # as Candidate.url_metadata


@dataclass(frozen=True, slots=True)
class UsageReported:
    usage: Usage


StreamEvent: TypeAlias = StreamStarted | PartDelta | CandidateFinished | UsageReported


class StreamUsage:
    """The usage one stream has reported so far, kept in one place for everyone who needs it
    (the record, the metrics). Upstreams report running totals, so each report replaces the
    last, and a piece that reports none keeps what came before."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def saw(self, usage: Usage | None) -> None:
        if usage is not None:
            self.usage = usage

    def saw_event(self, event: StreamEvent) -> None:
        if isinstance(event, UsageReported):
            self.usage = event.usage


async def response_events(response: GenerateResponse) -> AsyncGenerator[StreamEvent, None]:
    """A whole answer as a stream, for answers made whole before any of it can go out (a
    drawn picture, a run of code in the gateway's sandbox): each part in its own event."""
    yield StreamStarted(response.model_version, response.response_id, response.created,
                        response.dropped)
    for candidate in response.candidates:
        for part in candidate.parts:
            yield PartDelta(part, candidate.index)
        yield CandidateFinished(candidate.finish_reason or FinishReason.STOP, candidate.index,
                                candidate.grounding)
    yield UsageReported(response.usage)
