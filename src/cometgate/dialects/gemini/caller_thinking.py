"""Anthropic's thinking, copied onto the function call that follows it in a Gemini answer.

An Anthropic upstream's thinking reaches a Gemini caller that asked for thoughts as `thought`
parts whose `thoughtSignature` packs the thinking blocks (`anthropic.envelope`). Anthropic
refuses the next turn unless the assistant turn that made the calls comes back with those
blocks, but Gemini clients may drop thought parts from the history they send back and keep a
signature only on function calls — where Gemini itself puts the signature that matters.

So each functionCall part that has no signature of its own is given an envelope of every
Anthropic thinking block of its candidate since the previous call: those of thought parts, and
those of hidden thinking, which ride on the signature of the text that followed them. The
Anthropic history encoder rebuilds the blocks from it when the caller left those parts (or
their signatures) out, and skips blocks the caller also sent back. Signatures that are not
envelopes (Gemini's own) are never collected, so answers from Gemini upstreams keep their
parts as they were.
"""

from __future__ import annotations

from dataclasses import replace

from cometgate.canonical import Part, ReasoningPart, TextPart, ToolCallPart
from cometgate.dialects.anthropic.envelope import ThinkingBlock, pack, unpack


class CallThinking:
    """Fed a candidate's parts in order (per candidate index); returns each part to write."""

    def __init__(self) -> None:
        self._pending: dict[int, list[ThinkingBlock]] = {}

    def part(self, part: Part, index: int = 0) -> Part:
        if isinstance(part, ReasoningPart | TextPart):
            blocks = unpack(part.signature)
            if blocks is not None:
                self._pending.setdefault(index, []).extend(blocks)
            return part
        if isinstance(part, ToolCallPart):
            pending = self._pending.pop(index, None)
            if pending and part.signature is None:
                return replace(part, signature=pack(pending))
        return part
