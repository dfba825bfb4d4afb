"""Canonical responses → Gemini `GenerateContentResponse` JSON (camelCase keys, proto3 rules:
zero counts and empty lists are omitted, bytes are standard base64).

A candidate with log probabilities carries `logprobsResult` (`chosenCandidates`, one per
token; `topCandidates`, one per token, only when any token has alternatives; and
`logProbabilitySum`) and `avgLogprobs`, the mean of the chosen tokens' log probabilities.
`logProbability` is written even when 0.0 (a certain token), so that clients that read the
field never see it missing; token ids are unknown outside the upstream and are left out. A
log probability with no finite value is written as -9999.0: clients do arithmetic on it, and
proto3's "-Infinity" string would break that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cometgate.canonical import (
    Candidate,
    GenerateResponse,
    TextPart,
    TokenLogprob,
    Usage,
)
from cometgate.dialects.gemini.caller_grounding import grounding_metadata
from cometgate.dialects.gemini.caller_thinking import CallThinking
from cometgate.dialects.gemini.caller_url_context import url_context_metadata
from cometgate.dialects.gemini.parts import FINISH_REASONS, encode_part

_VERY_UNLIKELY = -9999.0


def create_time(created: float) -> str:
    """RFC 3339 in UTC with microseconds and "Z", as Google writes timestamps."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_usage(usage: Usage) -> dict[str, Any]:
    counts = (
        ("promptTokenCount", usage.prompt_tokens),
        ("candidatesTokenCount", usage.output_tokens),
        ("totalTokenCount", usage.total_tokens),
        ("cachedContentTokenCount", usage.cached_tokens),
    )
    out: dict[str, Any] = {key: value for key, value in counts if value}
    if usage.prompt_tokens:
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.prompt_tokens}]
    if usage.output_tokens:
        out["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.output_tokens}]
    if usage.thoughts_tokens:
        out["thoughtsTokenCount"] = usage.thoughts_tokens
    return out


def encode_logprobs(entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    """The candidate fields for `entries` (non-empty): avgLogprobs and logprobsResult."""
    chosen = [_logprob_candidate(entry.token, entry.logprob) for entry in entries]
    total = math.fsum(item["logProbability"] for item in chosen)
    result: dict[str, Any] = {"chosenCandidates": chosen}
    if any(entry.top for entry in entries):
        result["topCandidates"] = [_top_candidates(entry) for entry in entries]
    result["logProbabilitySum"] = total
    return {"avgLogprobs": total / len(chosen), "logprobsResult": result}


def _top_candidates(entry: TokenLogprob) -> dict[str, Any]:
    if not entry.top:
        return {}  # proto3 leaves out an empty list
    return {"candidates": [_logprob_candidate(token, value) for token, value in entry.top]}


def _logprob_candidate(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logProbability": logprob if math.isfinite(logprob)
            else _VERY_UNLIKELY}


def encode_candidate(candidate: Candidate) -> dict[str, Any]:
    content: dict[str, Any] = {"role": "model"}
    if candidate.parts:
        carry = CallThinking()
        parts = [encode_part(carry.part(p)) for p in candidate.parts]
        content = {"parts": parts, "role": "model"}
    out: dict[str, Any] = {"content": content}
    if candidate.finish_reason is not None:
        out["finishReason"] = FINISH_REASONS[candidate.finish_reason]
    if candidate.logprobs:
        out.update(encode_logprobs(candidate.logprobs))
    if candidate.grounding is not None:
        answer = "".join(p.text for p in candidate.parts if isinstance(p, TextPart))
        out["groundingMetadata"] = grounding_metadata(candidate.grounding, answer)
    if candidate.url_metadata:
        out["urlContextMetadata"] = url_context_metadata(candidate.url_metadata)
    out["index"] = candidate.index
    return out


def response_dict(response: GenerateResponse) -> dict[str, Any]:
    return {
        "candidates": [encode_candidate(c) for c in response.candidates],
        "usageMetadata": encode_usage(response.usage),
        "modelVersion": response.model_version,
        "responseId": response.response_id,
        "createTime": create_time(response.created),
    }


def encode_response(response: GenerateResponse) -> bytes:
    return orjson.dumps(response_dict(response))
