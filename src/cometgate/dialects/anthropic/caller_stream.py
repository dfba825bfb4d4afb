"""Canonical stream events → Anthropic Messages server-sent events.

Each frame is `event: <type>\\ndata: <one-line JSON>\\n\\n`, in Anthropic's order:

    message_start        (the message with empty content; usage zero, as nothing is known yet)
    ping                 (once)
    per content block:   content_block_start, content_block_delta…, content_block_stop
    message_delta        (stop_reason, and the final usage)
    message_stop

A new block opens whenever the kind of part changes: text increments append to the open text
block, reasoning increments to the open thinking block, whose signature arrives as one
signature_delta just before it stops; a tool call, whole, is one tool_use block with a single
input_json_delta holding all its arguments; thinking that rides on another part's signature
(see `caller_thinking`) is sent whole in front of that part's block. Only candidate 0 is
streamed. Usage usually arrives after the candidate's finish, so message_delta waits for
end(). After end() or fail() the encoder emits nothing more.
"""

from __future__ import annotations

from typing import Any

import orjson

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    Part,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.anthropic.caller_errors import encode_anthropic_error
from cometgate.dialects.anthropic.caller_response import (
    Block,
    message_id,
    stop_reason,
    tool_use_id,
    usage_fields,
)
from cometgate.dialects.anthropic.caller_thinking import carried_blocks, reasoning_blocks
from cometgate.dialects.upstream_answers import new_response_id
from cometgate.errors import GatewayError


def frame(kind: str, payload: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class MessageStreamEncoder:
    def __init__(self, model: str) -> None:
        self._model = model  # the name the caller used
        self._response_id: str | None = None  # set once message_start is out
        self._index = -1  # of the newest content block
        self._open: str | None = None  # type of the block not yet stopped
        self._reason: FinishReason | None = None
        self._usage = Usage()
        self._calls = 0
        self._over = False

    def feed(self, event: StreamEvent) -> list[bytes]:
        if self._over:
            return []
        if isinstance(event, StreamStarted):
            return self._start(event.response_id)
        frames = self._start(new_response_id())
        if isinstance(event, PartDelta) and event.index == 0:
            frames.extend(self._part(event.part))
        elif isinstance(event, CandidateFinished) and event.index == 0:
            self._reason = event.reason
        elif isinstance(event, UsageReported):
            self._usage = event.usage
        return frames

    def end(self) -> list[bytes]:
        if self._over:
            return []
        frames = self._start(new_response_id()) + self._close()
        frames.append(frame("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._reason, self._calls > 0),
                      "stop_sequence": None},
            "usage": usage_fields(self._usage),
        }))
        frames.append(frame("message_stop", {"type": "message_stop"}))
        self._over = True
        return frames

    def fail(self, error: GatewayError) -> list[bytes]:
        """The error event that ends a broken stream (Anthropic sends it in place of the rest,
        leaving any open block unstopped)."""
        if self._over:
            return []
        self._over = True
        _, body = encode_anthropic_error(error)
        # JSON allows no raw line break inside a string, so outside one it is only spacing.
        body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        return [b"event: error\ndata: " + body + b"\n\n"]

    def _start(self, response_id: str) -> list[bytes]:
        if self._response_id is not None:
            return []
        self._response_id = response_id
        message: dict[str, Any] = {
            "id": message_id(response_id), "type": "message", "role": "assistant",
            "model": self._model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": usage_fields(Usage()),
        }
        return [frame("message_start", {"type": "message_start", "message": message}),
                frame("ping", {"type": "ping"})]

    def _part(self, part: Part) -> list[bytes]:
        if isinstance(part, TextPart):
            frames = self._whole(carried_blocks(part.signature)) if part.signature else []
            if part.text:
                if self._open != "text":
                    frames += self._begin({"type": "text", "text": ""})
                frames.append(self._delta({"type": "text_delta", "text": part.text}))
            return frames
        if isinstance(part, ReasoningPart):
            return self._reasoning(part)
        if isinstance(part, ToolCallPart):
            call_id = tool_use_id(part, self._response_id or "", self._calls)
            self._calls += 1
            frames = self._whole(carried_blocks(part.signature))
            frames += self._begin({"type": "tool_use", "id": call_id, "name": part.name,
                                   "input": {}})
            frames.append(self._delta({"type": "input_json_delta",
                                       "partial_json": orjson.dumps(dict(part.arguments))
                                       .decode()}))
            return frames + self._close()
        return []  # images, files: the Messages API returns none

    def _reasoning(self, part: ReasoningPart) -> list[bytes]:
        blocks = reasoning_blocks(part)
        if self._open == "thinking" and len(blocks) == 1 and blocks[0]["type"] == "thinking":
            # The open block is this reasoning's own: its text came in increments.
            frames = []
            if part.text:
                frames.append(self._delta({"type": "thinking_delta", "thinking": part.text}))
            return frames + self._signed(blocks[0]["signature"])
        return self._whole(blocks)

    def _whole(self, blocks: list[Block]) -> list[bytes]:
        frames: list[bytes] = []
        for block in blocks:
            if block["type"] != "thinking":
                frames += self._begin(block) + self._close()
                continue
            frames += self._begin({"type": "thinking", "thinking": "", "signature": ""})
            if block["thinking"]:
                frames.append(self._delta({"type": "thinking_delta",
                                           "thinking": block["thinking"]}))
            frames += self._signed(block["signature"])
        return frames

    def _signed(self, signature: str) -> list[bytes]:
        """An unsigned thinking block stays open for more increments."""
        if not signature:
            return []
        return [self._delta({"type": "signature_delta", "signature": signature}),
                *self._close()]

    def _begin(self, block: Block) -> list[bytes]:
        frames = self._close()
        self._index += 1
        self._open = block["type"]
        frames.append(frame("content_block_start", {
            "type": "content_block_start", "index": self._index, "content_block": block}))
        return frames

    def _delta(self, delta: Block) -> bytes:
        return frame("content_block_delta",
                     {"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [frame("content_block_stop", {"type": "content_block_stop", "index": self._index})]
