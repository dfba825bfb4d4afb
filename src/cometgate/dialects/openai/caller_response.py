"""Canonical responses → OpenAI `chat.completion` bodies and model lists (we serve the OpenAI
dialect). The pieces shared with the stream encoder (ids, finish reasons, usage, tool calls)
live here too, so both answer a request in the same words.

Finish reasons: STOP → "tool_calls" when the choice made calls, else "stop"; MAX_TOKENS →
"length"; SAFETY and RECITATION → "content_filter"; MALFORMED_TOOL_CALL and OTHER → "stop"
(OpenAI has no word for them; the malformed call itself was left out by the decoder).

Log probabilities: `choices[].logprobs` is `{"content": [...], "refusal": null}` when the
candidate carries any, else null. `bytes` is the token's UTF-8 encoding (the upstream's own
bytes are not kept, so a token that split a character gives those of U+FFFD); a log
probability with no finite value is written as -9999.0, OpenAI's value for "very unlikely".
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateResponse,
    ModelInfo,
    ReasoningPart,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)

OWNER = "cometgate"
_FINISH = {
    FinishReason.STOP: "stop",
    FinishReason.MAX_TOKENS: "length",
    FinishReason.SAFETY: "content_filter",
    FinishReason.RECITATION: "content_filter",
    FinishReason.MALFORMED_TOOL_CALL: "stop",
    FinishReason.OTHER: "stop",
}
_VERY_UNLIKELY = -9999.0


def completion_id(response_id: str) -> str:
    return f"chatcmpl-{response_id}"


def tool_call_id(response_id: str, choice: int, position: int) -> str:
    """An id for a call the upstream gave none: the same for the same call of the same
    response, so a stream and a retry of its encoding agree."""
    digest = hashlib.sha256(f"{response_id}/{choice}/{position}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def finish_reason(reason: FinishReason | None, made_calls: bool) -> str:
    if made_calls and reason in (FinishReason.STOP, None):
        return "tool_calls"
    return _FINISH[reason] if reason is not None else "stop"


def tool_call_body(call: ToolCallPart, call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": orjson.dumps(dict(call.arguments)).decode()},
    }


def logprobs_body(entries: Sequence[TokenLogprob]) -> dict[str, Any] | None:
    if not entries:
        return None
    return {
        "content": [
            {**_logprob_entry(entry.token, entry.logprob),
             "top_logprobs": [_logprob_entry(token, logprob) for token, logprob in entry.top]}
            for entry in entries
        ],
        "refusal": None,
    }


def _logprob_entry(token: str, logprob: float) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob if math.isfinite(logprob) else _VERY_UNLIKELY,
        "bytes": list(token.encode("utf-8", "replace")),
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    completion = usage.output_tokens + usage.thoughts_tokens
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": usage.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.thoughts_tokens},
    }


def encode_chat_completion(response: GenerateResponse, model: str) -> bytes:
    """`model` is the name the caller used. Media parts in the output (generated images) have
    no place in a chat completion and are left out."""
    body = {
        "id": completion_id(response.response_id),
        "object": "chat.completion",
        "created": int(response.created),
        "model": model,
        "choices": [_choice(response.response_id, candidate) for candidate in
                    response.candidates],
        "usage": usage_body(response.usage),
        "system_fingerprint": None,
    }
    return orjson.dumps(body)


def _choice(response_id: str, candidate: Candidate) -> dict[str, Any]:
    texts = [p.text for p in candidate.parts if isinstance(p, TextPart)]
    thoughts = [p.text for p in candidate.parts if isinstance(p, ReasoningPart)]
    calls = [p for p in candidate.parts if isinstance(p, ToolCallPart)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = [
            tool_call_body(call, call.call_id or tool_call_id(response_id, candidate.index, n))
            for n, call in enumerate(calls)
        ]
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return {
        "index": candidate.index,
        "message": message,
        "logprobs": logprobs_body(candidate.logprobs),
        "finish_reason": finish_reason(candidate.finish_reason, bool(calls)),
    }


# --- models ------------------------------------------------------------------------------------


def model_body(info: ModelInfo, created: int = 0) -> dict[str, Any]:
    """`created`: the gateway knows no creation date for a model; 0 (the epoch) is a stable
    value that clients sorting by it can rely on."""
    return {"id": info.id, "object": "model", "created": created, "owned_by": OWNER}


def encode_model_list(infos: Sequence[ModelInfo]) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_body(info) for info in infos]})


def encode_model(info: ModelInfo) -> bytes:
    return orjson.dumps(model_body(info))
