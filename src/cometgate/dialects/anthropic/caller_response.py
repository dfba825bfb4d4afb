"""Canonical responses → Anthropic Messages answers (a `message` object, a token count).

Content blocks follow the parts of candidate 0 (the only one this dialect asks for), in order:
thinking blocks for reasoning and for signatures carried on other parts (see
`caller_thinking`), `text` for text (adjacent text parts make one block, as a stream would),
`tool_use` for calls. Parts the Messages API cannot return (images, files) are left out: a
caller of this dialect never asked for them, and the pipeline reports what was dropped.

    finish reason                 stop_reason
    STOP, no call                 end_turn
    STOP (or none), with a call   tool_use
    MAX_TOKENS                    max_tokens
    SAFETY, RECITATION            refusal (the model's output was withheld)
    MALFORMED_TOOL_CALL, OTHER    end_turn (no call could be read; the turn is over)

`stop_sequence` is always null: the canonical finish reason does not say which sequence (or
whether one) ended the text, so "stop_sequence" is never claimed.

Usage: input_tokens = prompt - cached (Anthropic counts cache reads apart), output_tokens =
output + thoughts (Anthropic counts thinking as output), cache_read_input_tokens = cached,
cache_creation_input_tokens = 0 (the gateway writes no cache).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateResponse,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.anthropic.caller_thinking import carried_blocks, reasoning_blocks

Block = dict[str, Any]

_STOP_REASON = {
    FinishReason.STOP: "end_turn",
    FinishReason.MAX_TOKENS: "max_tokens",
    FinishReason.SAFETY: "refusal",
    FinishReason.RECITATION: "refusal",
    FinishReason.MALFORMED_TOOL_CALL: "end_turn",
    FinishReason.OTHER: "end_turn",
}


def encode_message(response: GenerateResponse, model: str) -> bytes:
    """`model` is the name the caller used."""
    candidate = _first(response.candidates)
    parts = candidate.parts if candidate is not None else ()
    content = content_blocks(parts, response.response_id)
    called = any(block["type"] == "tool_use" for block in content)
    return orjson.dumps({
        "id": message_id(response.response_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(candidate.finish_reason if candidate else None, called),
        "stop_sequence": None,
        "usage": usage_fields(response.usage),
    })


def encode_count_tokens(total: int) -> bytes:
    return orjson.dumps({"input_tokens": total})


def content_blocks(parts: Sequence[Part], response_id: str) -> list[Block]:
    blocks: list[Block] = []
    calls = 0
    for part in parts:
        if isinstance(part, ReasoningPart):
            blocks.extend(reasoning_blocks(part))
        elif isinstance(part, TextPart):
            blocks.extend(carried_blocks(part.signature))
            if not part.text:
                continue
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += part.text
            else:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            blocks.extend(carried_blocks(part.signature))
            blocks.append(tool_use_block(part, tool_use_id(part, response_id, calls)))
            calls += 1
    return blocks


def tool_use_block(part: ToolCallPart, call_id: str) -> Block:
    return {"type": "tool_use", "id": call_id, "name": part.name, "input": dict(part.arguments)}


def tool_use_id(part: ToolCallPart, response_id: str, ordinal: int) -> str:
    """The call's own id, or one derived from the response and the call's place in it: the
    same call always gets the same id, and no two calls of a conversation share one."""
    if part.call_id:
        return part.call_id
    digest = hashlib.sha256(f"{response_id}/{ordinal}".encode()).hexdigest()
    return f"toolu_{digest[:24]}"


def message_id(response_id: str) -> str:
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def stop_reason(reason: FinishReason | None, called: bool) -> str:
    if called and reason in (None, FinishReason.STOP, FinishReason.OTHER):
        return "tool_use"
    return _STOP_REASON[reason] if reason is not None else "end_turn"


def usage_fields(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens + usage.thoughts_tokens,
    }


def _first(candidates: Sequence[Candidate]) -> Candidate | None:
    return next((c for c in candidates if c.index == 0), candidates[0] if candidates else None)
