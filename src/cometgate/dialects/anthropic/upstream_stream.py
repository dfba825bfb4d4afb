"""Anthropic Messages SSE events → canonical stream events.

The upstream sends `message_start`, then per content block `content_block_start`, deltas
(`text_delta`, `input_json_delta` fragments, `thinking_delta`, `signature_delta`) and
`content_block_stop`, then `message_delta` (stop reason, cumulative usage) and
`message_stop`; `ping` may come anywhere, and an `error` event may replace the rest.

What is emitted, in order: StreamStarted at `message_start` (so that an error event in its
place still fails before anything reaches the caller); text increments as they come, the first
one carrying any hidden thinking (see `upstream_response`); reasoning increments when thoughts
are asked for, and at the block's end an empty ReasoningPart that carries its signature; each
tool call whole at its `content_block_stop`, and so the code of a code execution (its result
whole at its `content_block_start`); CandidateFinished (with the web search's grounding, see
`web_search`: a `citations_delta` cites its text block) and UsageReported at `message_stop`.
A stream that ends before `message_stop` is a transient failure; event types this decoder does
not know are skipped, as Anthropic's versioning policy asks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    Part,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    UsageReported,
)
from cometgate.dialects.anthropic.code_execution import RESULT_BLOCK, code_part, result_part
from cometgate.dialects.anthropic.envelope import redacted_block, thinking_block
from cometgate.dialects.anthropic.upstream_errors import classify_stream_error
from cometgate.dialects.anthropic.upstream_response import (
    Assembler,
    TokenCounts,
    finish_reason,
)
from cometgate.dialects.anthropic.web_search import Searches
from cometgate.dialects.sse_decode import SSEFrame
from cometgate.dialects.upstream_answers import new_response_id, unreadable
from cometgate.errors import FailureClass, UpstreamError


@dataclass(slots=True)
class _Block:
    """A content block being received."""

    kind: str
    call_id: object = None
    name: object = None
    start_input: object = None  # tool_use: the input given at the start (Anthropic sends {})
    fragments: list[str] = field(default_factory=list)  # partial_json, or thinking text
    signature: list[str] = field(default_factory=list)
    data: object = None  # redacted_thinking
    start: int = 0  # text: the candidate's characters before it (its citations span the rest)
    citations: list[object] = field(default_factory=list)  # text: citations_delta citations


@dataclass(slots=True)
class _State:
    request: GenerateRequest
    model_version: str
    assembler: Assembler
    started: bool = False
    stopped: bool = False
    reason: FinishReason | None = None
    counts: TokenCounts = field(default_factory=TokenCounts)
    blocks: dict[int, _Block] = field(default_factory=dict)
    searches: Searches = field(default_factory=Searches)


async def decode_stream(
    frames: AsyncIterable[SSEFrame], request: GenerateRequest, model_version: str
) -> AsyncGenerator[StreamEvent, None]:
    state = _State(request, model_version, Assembler(request))
    try:
        async for frame in frames:
            for event in _events(state, _event(frame)):
                yield event
            if state.stopped:
                break
        if not state.stopped:
            raise UpstreamError("upstream closed the stream early",
                                failure_class=FailureClass.TRANSIENT, http_status=503,
                                status="UNAVAILABLE")
    except UpstreamError:
        if state.started:
            # message_start already reported the prompt's tokens: they were spent, so the
            # caller's usage counts them even though the stream broke.
            yield UsageReported(state.counts.usage())
        raise
    yield UsageReported(state.counts.usage())


def _event(frame: SSEFrame) -> dict[str, Any]:
    try:
        event = orjson.loads(frame.data)
    except orjson.JSONDecodeError:
        raise unreadable("a stream event is not JSON") from None
    if not isinstance(event, dict):
        raise unreadable("a stream event is not a JSON object")
    if event.get("type") == "error" or frame.event == "error":
        raise classify_stream_error(event)
    return event


def _events(state: _State, event: dict[str, Any]) -> list[StreamEvent]:
    kind = event.get("type")
    if kind == "ping":
        return []
    events: list[StreamEvent] = []
    if not state.started:
        state.started = True
        events.append(StreamStarted(state.model_version, new_response_id(), time.time()))
    if kind == "message_start":
        message = event.get("message")
        state.counts.update(message.get("usage") if isinstance(message, dict) else None)
    elif kind == "content_block_start":
        events.extend(_block_start(state, event))
    elif kind == "content_block_delta":
        events.extend(_block_delta(state, event))
    elif kind == "content_block_stop":
        events.extend(_block_stop(state, event))
    elif kind == "message_delta":
        delta = event.get("delta")
        reason = finish_reason(delta.get("stop_reason") if isinstance(delta, dict) else None)
        state.reason = reason or state.reason
        state.counts.update(event.get("usage"))
    elif kind == "message_stop":
        events.extend(_message_stop(state))
    return events


def _index(event: dict[str, Any]) -> int:
    index = event.get("index")
    if not isinstance(index, int):
        raise unreadable("a content block event has no index")
    return index


def _block_start(state: _State, event: dict[str, Any]) -> list[StreamEvent]:
    raw = event.get("content_block")
    raw = raw if isinstance(raw, dict) else {}
    block = _Block(str(raw.get("type")), raw.get("id"), raw.get("name"), raw.get("input"),
                   data=raw.get("data"), start=state.searches.written)
    state.blocks[_index(event)] = block
    if isinstance(raw.get("citations"), list):
        block.citations.extend(raw["citations"])
    # Start events normally carry empty text; whatever they hold counts all the same.
    if block.kind == "text" and isinstance(raw.get("text"), str):
        return _text(state, raw["text"])
    if block.kind == "thinking":
        return _thinking_delta(state, block, raw.get("thinking"), raw.get("signature"))
    if block.kind == RESULT_BLOCK:  # a server tool's result arrives whole, in its start
        return _parts(result_part(raw.get("content")))
    return []


def _block_delta(state: _State, event: dict[str, Any]) -> list[StreamEvent]:
    block = state.blocks.get(_index(event))
    delta = event.get("delta")
    if block is None or not isinstance(delta, dict):
        return []
    kind = delta.get("type")
    if kind == "text_delta" and isinstance(delta.get("text"), str):
        return _text(state, delta["text"])
    if kind == "citations_delta":
        block.citations.append(delta.get("citation"))
    if kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
        block.fragments.append(delta["partial_json"])
    elif kind in ("thinking_delta", "signature_delta"):
        return _thinking_delta(state, block, delta.get("thinking"), delta.get("signature"))
    return []


def _thinking_delta(state: _State, block: _Block, text: object,
                    signature: object) -> list[StreamEvent]:
    if isinstance(signature, str):
        block.signature.append(signature)
    if not isinstance(text, str) or not text:
        return []
    block.fragments.append(text)
    if state.assembler.shows_thoughts:
        return [PartDelta(ReasoningPart(text))]
    return []


def _block_stop(state: _State, event: dict[str, Any]) -> list[StreamEvent]:
    block = state.blocks.pop(_index(event), None)
    if block is None:
        return []
    assembler = state.assembler
    if block.kind == "tool_use":
        return _parts(assembler.tool_use(block.call_id, block.name, _tool_input(block)))
    if block.kind == "text":
        state.searches.cited(block.start, block.citations)
    if block.kind == "server_tool_use":
        state.searches.server_tool_use(block.name, _tool_input(block))
        return _parts(code_part(block.name, _tool_input(block)))
    if block.kind == "thinking":
        whole = thinking_block("".join(block.fragments), "".join(block.signature))
        return _parts(assembler.thinking(whole, ""))  # the text went out in increments
    if block.kind == "redacted_thinking":
        if not isinstance(block.data, str):
            raise unreadable("a redacted thinking block has no data")
        return _parts(assembler.thinking(redacted_block(block.data), ""))
    return []


def _tool_input(block: _Block) -> object:
    """The call's arguments: the joined input_json_delta fragments ("" means no arguments),
    or None when they are not a JSON object."""
    text = "".join(block.fragments)
    if not text.strip():
        return block.start_input if isinstance(block.start_input, dict) else {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _message_stop(state: _State) -> list[StreamEvent]:
    state.stopped = True
    events = _parts(state.assembler.finish())
    reason = state.reason or FinishReason.OTHER
    if state.assembler.malformed:
        reason = FinishReason.MALFORMED_TOOL_CALL
    events.append(CandidateFinished(reason, grounding=state.searches.grounding()))
    return events


def _text(state: _State, text: str) -> list[StreamEvent]:
    part = state.assembler.text(text)
    if isinstance(part, TextPart):
        state.searches.text(part.text, None)
    return _parts(part)


def _parts(part: Part | None) -> list[StreamEvent]:
    return [] if part is None else [PartDelta(part)]
