"""OpenAI Chat Completions wire shapes the worker emits: completions, stream chunks, errors.

Pure builders of plain dicts; byte framing of SSE lives here too so it is exact in one place:
each event is `data: <compact JSON>\\n\\n` and the stream ends with `data: [DONE]\\n\\n`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.worker.generation import TokenLogprob
from cometgate.worker.tool_markup import ParsedToolCall

SSE_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class StreamIdentity:
    """What every chunk of one response repeats."""

    id: str
    created: int
    model: str

    @classmethod
    def fresh(cls, model: str) -> StreamIdentity:
        return cls(f"chatcmpl-{secrets.token_hex(12)}", int(time.time()), model)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # The prompt tokens llama.cpp took from its KV cache rather than evaluating, reported as
    # OpenAI reports prompt-cache hits; None: not asked for (no prompt_cache_key).
    cached_tokens: int | None = None

    def as_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None:
            wire["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return wire


@dataclass(frozen=True, slots=True)
class ChoiceResult:
    index: int
    content: str | None
    tool_calls: tuple[ParsedToolCall, ...]
    finish_reason: str
    logprobs: tuple[TokenLogprob, ...] | None


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_body(
    message: str, *, kind: str = "invalid_request_error", param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def logprobs_wire(entries: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    if entries is None:
        return None
    return {
        "content": [
            {
                "token": entry.token,
                "logprob": entry.logprob,
                "bytes": list(entry.bytes),
                "top_logprobs": [
                    {"token": top.token, "logprob": top.logprob, "bytes": list(top.bytes)}
                    for top in entry.top_logprobs
                ],
            }
            for entry in entries
        ],
        "refusal": None,
    }


def tool_calls_wire(calls: Sequence[ParsedToolCall], *, indexed: bool) -> list[dict[str, Any]]:
    """Tool calls as in a message, or (`indexed`) as in a stream delta, which adds `index`."""
    wire = []
    for i, call in enumerate(calls):
        item: dict[str, Any] = {"index": i} if indexed else {}
        item.update(
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
        )
        wire.append(item)
    return wire


def completion_body(
    identity: StreamIdentity, choices: Sequence[ChoiceResult], usage: Usage
) -> dict[str, Any]:
    return {
        "id": identity.id,
        "object": "chat.completion",
        "created": identity.created,
        "model": identity.model,
        "choices": [_choice_wire(choice) for choice in choices],
        "usage": usage.as_wire(),
    }


def _choice_wire(choice: ChoiceResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content}
    if choice.tool_calls:
        message["tool_calls"] = tool_calls_wire(choice.tool_calls, indexed=False)
    return {
        "index": choice.index,
        "message": message,
        "logprobs": logprobs_wire(choice.logprobs),
        "finish_reason": choice.finish_reason,
    }


def chunk(
    identity: StreamIdentity,
    index: int,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
    with_usage_field: bool = False,
) -> dict[str, Any]:
    """One chat.completion.chunk with a single choice. `with_usage_field` adds `usage: null`, as
    OpenAI does on every chunk when the caller asked for stream usage."""
    body: dict[str, Any] = {
        "id": identity.id,
        "object": "chat.completion.chunk",
        "created": identity.created,
        "model": identity.model,
        "choices": [
            {
                "index": index,
                "delta": delta,
                "logprobs": logprobs_wire(logprobs),
                "finish_reason": finish_reason,
            }
        ],
    }
    if with_usage_field:
        body["usage"] = None
    return body


def usage_chunk(identity: StreamIdentity, usage: Usage) -> dict[str, Any]:
    return {
        "id": identity.id,
        "object": "chat.completion.chunk",
        "created": identity.created,
        "model": identity.model,
        "choices": [],
        "usage": usage.as_wire(),
    }
