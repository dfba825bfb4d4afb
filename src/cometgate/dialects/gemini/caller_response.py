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

import base64
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from cometgate.canonical import (
    BlobPart,
    Candidate,
    CodeOutcome,
    CodePart,
    CodeResultPart,
    FileRefPart,
    FinishReason,
    GenerateResponse,
    Part,
    ReasoningPart,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from cometgate.dialects.gemini.caller_grounding import grounding_metadata
from cometgate.dialects.gemini.caller_thinking import CallThinking
from cometgate.dialects.gemini.caller_url_context import url_context_metadata

FINISH_REASONS = {
    FinishReason.STOP: "STOP",
    FinishReason.MAX_TOKENS: "MAX_TOKENS",
    FinishReason.SAFETY: "SAFETY",
    FinishReason.RECITATION: "RECITATION",
    FinishReason.MALFORMED_TOOL_CALL: "MALFORMED_FUNCTION_CALL",
    FinishReason.OTHER: "OTHER",
}
_VERY_UNLIKELY = -9999.0
CODE_OUTCOMES = {
    CodeOutcome.OK: "OUTCOME_OK",
    CodeOutcome.FAILED: "OUTCOME_FAILED",
    CodeOutcome.DEADLINE_EXCEEDED: "OUTCOME_DEADLINE_EXCEEDED",
}


def create_time(created: float) -> str:
    """RFC 3339 in UTC with microseconds and "Z", as Google writes timestamps."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_part(part: Part) -> dict[str, Any]:
    out: dict[str, Any]
    signature: bytes | None = None
    match part:
        case ReasoningPart(text=text, signature=signature):
            out = {"text": text, "thought": True}
        case TextPart(text=text, signature=signature):
            out = {"text": text}
        case ToolCallPart(name=name, arguments=arguments, call_id=call_id, signature=signature):
            call: dict[str, Any] = {"id": call_id} if call_id else {}
            out = {"functionCall": {**call, "name": name, "args": dict(arguments)}}
        case BlobPart(mime_type=mime_type, data=data):
            out = {"inlineData": {"mimeType": mime_type, "data": _b64(data)}}
        case FileRefPart(uri=uri, mime_type=mime_type):
            ref = {"mimeType": mime_type} if mime_type else {}
            out = {"fileData": {**ref, "fileUri": uri}}
        case ToolResultPart(name=name, response=response, call_id=call_id):
            result: dict[str, Any] = {"id": call_id} if call_id else {}
            out = {"functionResponse": {**result, "name": name, "response": dict(response)}}
        case CodePart(code=code, language=language):
            out = {"executableCode": {"language": language, "code": code}}
        case CodeResultPart(outcome=outcome, output=output):
            ran: dict[str, Any] = {"outcome": CODE_OUTCOMES[outcome]}
            if output:  # proto3 leaves out an empty string
                ran["output"] = output
            out = {"codeExecutionResult": ran}
    if signature:
        out["thoughtSignature"] = _b64(signature)
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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
