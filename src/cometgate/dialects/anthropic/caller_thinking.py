"""Thinking blocks between an Anthropic-dialect caller and canonical parts, both ways.

An Anthropic caller sends an assistant turn's `thinking` and `redacted_thinking` blocks back
unchanged (Anthropic refuses a tool-use continuation without them). Canonical parts carry
thinking as opaque signature bytes, of two kinds:

- an Anthropic upstream's blocks, packed by `envelope` (on a ReasoningPart, or on the text or
  tool call that followed hidden thinking). The caller sees those very blocks; each block it
  sends back becomes a ReasoningPart whose signature packs that one block, which the outbound
  codec unpacks, so an Anthropic upstream gets it back byte for byte;
- any other model's signature (a Gemini thought signature, which may sit on a text part or a
  function call). The caller sees a `thinking` block whose signature is OWN + base64 (it
  belonged to that thinking) or NEXT + base64 (it belonged to the text or tool call that
  follows; the thinking is empty), and each comes back to where it was. Anthropic's own
  signatures are base64, which has no ":", so the two kinds cannot be confused.

Reasoning without a signature is shown with signature "", and "" sent back means unsigned.
A `redacted_thinking` block becomes an empty ReasoningPart carrying that block: an Anthropic
upstream gets it back unchanged, and nothing about it is readable by any other model.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cometgate.canonical import ReasoningPart
from cometgate.dialects.anthropic.caller_fields import invalid, string
from cometgate.dialects.anthropic.envelope import pack, redacted_block, thinking_block, unpack

OWN = "cometgate.own:"
NEXT = "cometgate.next:"

Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Carried:
    """A signature that belongs to the part decoded next (a text or a tool call)."""

    signature: bytes


def reasoning_blocks(part: ReasoningPart) -> list[Block]:
    """The blocks a caller sees for a ReasoningPart (none for empty unsigned reasoning)."""
    blocks = unpack(part.signature)
    if blocks is not None:
        return [dict(block) for block in blocks]
    if part.signature is not None:
        return [thinking(part.text, OWN + _text(part.signature))]
    return [thinking(part.text, "")] if part.text else []


def carried_blocks(signature: bytes | None) -> list[Block]:
    """The blocks a caller sees in front of a text or tool_use block whose part carries
    `signature`."""
    if signature is None:
        return []
    blocks = unpack(signature)
    if blocks is not None:
        return [dict(block) for block in blocks]
    return [thinking("", NEXT + _text(signature))]


def thinking(text: str, signature: str) -> Block:
    return {"type": "thinking", "thinking": text, "signature": signature}


def decode_thinking(block: Mapping[str, Any], path: str) -> ReasoningPart | Carried:
    text = string(block.get("thinking"), f"{path}.thinking")
    signature = string(block.get("signature"), f"{path}.signature")
    if signature.startswith(OWN):
        return ReasoningPart(text, _bytes(signature[len(OWN):], path))
    if signature.startswith(NEXT):
        return Carried(_bytes(signature[len(NEXT):], path))
    if not signature:
        return ReasoningPart(text)
    return ReasoningPart(text, pack([thinking_block(text, signature)]))


def decode_redacted(block: Mapping[str, Any], path: str) -> ReasoningPart:
    data = string(block.get("data"), f"{path}.data")
    return ReasoningPart("", pack([redacted_block(data)]))


def _text(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def _bytes(text: str, path: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{path}.signature", "Invalid `signature` in `thinking` block") from None
