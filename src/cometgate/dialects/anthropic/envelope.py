"""Anthropic thinking blocks carried through a caller as an opaque thought signature.

Anthropic returns `thinking` blocks (text + signature) and `redacted_thinking` blocks (opaque
data), and rejects a tool-use continuation unless the assistant turn that made the calls is sent
back with those blocks unchanged — the thinking text included, not only its signature. Gemini
callers return exactly one thing unchanged: a part's `thoughtSignature` bytes. So the blocks are
packed into those bytes:

    signature = MAGIC + orjson([{"type": "thinking", "thinking": …, "signature": …},
                                {"type": "redacted_thinking", "data": …}, …])

Invariants: `pack` then `unpack` gives back the same blocks in the same order; `unpack` returns
None for anything that is not a well-formed envelope (a Gemini signature, a truncated or edited
one), and only ever yields the two thinking block types, so an edited envelope cannot smuggle
other content (a tool_use, say) into the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

MAGIC = b"cometgate.anthropic.thinking.v1:"

ThinkingBlock = dict[str, str]


def pack(blocks: Sequence[ThinkingBlock]) -> bytes:
    return MAGIC + orjson.dumps(list(blocks))


def unpack(signature: bytes | None) -> tuple[ThinkingBlock, ...] | None:
    if signature is None or not signature.startswith(MAGIC):
        return None
    try:
        blocks = orjson.loads(signature[len(MAGIC):])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(blocks, list) or not blocks:
        return None
    checked = [_checked(block) for block in blocks]
    if any(block is None for block in checked):
        return None
    return tuple(block for block in checked if block is not None)


def thinking_block(thinking: str, signature: str) -> ThinkingBlock:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def redacted_block(data: str) -> ThinkingBlock:
    return {"type": "redacted_thinking", "data": data}


def _checked(block: Any) -> ThinkingBlock | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "thinking":
        thinking, signature = block.get("thinking"), block.get("signature")
        if isinstance(thinking, str) and isinstance(signature, str):
            return thinking_block(thinking, signature)
    elif kind == "redacted_thinking":
        data = block.get("data")
        if isinstance(data, str):
            return redacted_block(data)
    return None
