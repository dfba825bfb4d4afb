"""The result of a generation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cometgate.canonical.grounding import Grounding
from cometgate.canonical.messages import Part
from cometgate.canonical.url_context import UrlMetadata


class FinishReason(StrEnum):
    STOP = "stop"  # natural end, a stop sequence, or a completed tool call
    MAX_TOKENS = "max_tokens"
    SAFETY = "safety"
    RECITATION = "recitation"
    MALFORMED_TOOL_CALL = "malformed_tool_call"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0  # includes cached tokens
    output_tokens: int = 0  # visible output, excluding thoughts
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    # What the upstream bills beyond tokens, as its answer reports it: whether a web search
    # grounded the answer (Gemini's groundingMetadata), and the service tier that served it
    # (OpenAI's `service_tier`; None when not reported).
    searches: int = 0
    service_tier: str | None = None
    # Work the gateway itself did for the answer, on the caller's behalf: pages fetched for URL
    # context, seconds of sandboxed code execution, images generated. Counted and priced like
    # the upstream's own billable units.
    fetched_pages: int = 0
    sandbox_seconds: float = 0.0
    images: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens + self.thoughts_tokens


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One sampled token with its log probability (natural log, ≤ 0; -inf when the upstream
    gave none) and the upstream's most likely alternatives at that step, best first."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    parts: tuple[Part, ...]
    finish_reason: FinishReason | None
    index: int = 0
    # One entry per generated token, in order; empty unless log probabilities were asked for.
    logprobs: tuple[TokenLogprob, ...] = ()
    grounding: Grounding | None = None  # what a web search found, when one ran
    url_metadata: tuple[UrlMetadata, ...] = ()  # the URLs URL context read, when it ran


@dataclass(frozen=True, slots=True)
class GenerateResponse:
    model_version: str  # the model that answered, as the caller named it
    candidates: tuple[Candidate, ...]
    usage: Usage
    response_id: str
    created: float  # unix seconds
    # What the upstream translation could not carry ("path: reason"), reported to the caller.
    dropped: tuple[str, ...] = ()
