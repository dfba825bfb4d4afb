"""OpenAI `chat.completion.chunk` SSE frames → canonical stream events.

Order of what is emitted: StreamStarted once the first chunk is read (so that an error
answered in place of the first chunk still fails before anything reaches the caller), text and
reasoning increments as they come, each choice's tool calls whole when that choice finishes
(their arguments arrive as string fragments spread over many chunks), CandidateFinished, and
one UsageReported at the end (`stream_options.include_usage` puts usage in a last chunk with
no choices; servers that repeat usage on every chunk are read for the latest).

Log probabilities (`choices[].logprobs.content`) ride on the PartDelta of the text they came
with. Those that arrive with nothing to show yet (tool-call fragments, the quote of an enum
value, an empty delta) are held and ride on the choice's next text or first tool call; any
still held when the choice finishes come in a PartDelta with empty text, so none is lost.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from cometgate.canonical import (
    CandidateFinished,
    Citation,
    FinishReason,
    GenerateRequest,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.openai.message_fields import parse_arguments, reasoning_text
from cometgate.dialects.openai.upstream_errors import classify_stream_error
from cometgate.dialects.openai.upstream_response import (
    answer_usage,
    decode_logprobs,
    finish_reason,
    wants_thoughts,
)
from cometgate.dialects.openai.web_search import grounding_of, searches, url_citations
from cometgate.dialects.sse_decode import SSEFrame
from cometgate.dialects.upstream_answers import new_response_id, unreadable
from cometgate.errors import FailureClass, UpstreamError

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}


class EnumUnquoter:
    """Turns the increments of a streamed JSON string ("\\"pos", "itive\\"") into the
    increments of its value ("pos", "itive"). Escapes split across increments are held back
    until complete. If the text does not start as a JSON string it is passed through."""

    def __init__(self) -> None:
        self._state = "before"  # before → inside → after; or raw
        self._held = ""  # an incomplete escape

    def feed(self, text: str) -> str:
        if self._state == "before":
            stripped = text.lstrip()
            if not stripped:
                return ""
            if not stripped.startswith('"'):
                self._state = "raw"
                return text
            self._state, text = "inside", stripped[1:]
        if self._state == "raw":
            return text
        if self._state == "after":
            return ""
        return self._inside(self._held + text)

    def _inside(self, text: str) -> str:
        out: list[str] = []
        self._held = ""
        i = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                self._state = "after"
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            decoded, used = _escape(text, i)
            if used == 0:
                self._held = text[i:]
                break
            out.append(decoded)
            i += used
        return "".join(out)


def _escape(text: str, start: int) -> tuple[str, int]:
    """The escape at text[start] ("\\n", "\\u00e9", a surrogate pair) and its length; length 0
    when the text ends before the escape is complete."""
    if start + 1 >= len(text):
        return "", 0
    kind = text[start + 1]
    if kind != "u":
        return _ESCAPES.get(kind, kind), 2
    if start + 6 > len(text):
        return "", 0
    unit = _hex(text[start + 2:start + 6])
    if unit is None:
        return text[start:start + 6], 6  # not JSON; keep the characters rather than fail
    if 0xD800 <= unit < 0xDC00:  # a high surrogate needs its low partner
        follows = text[start + 6:start + 8]
        if "\\u".startswith(follows) and start + 12 > len(text):
            return "", 0  # the partner may still be on its way
        low = _hex(text[start + 8:start + 12]) if follows == "\\u" else None
        if low is not None and 0xDC00 <= low < 0xE000:
            return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), 12
    if 0xD800 <= unit < 0xE000:
        return "\ufffd", 6  # a lone surrogate cannot be encoded as UTF-8 later
    return chr(unit), 6


def _hex(digits: str) -> int | None:
    try:
        return int(digits, 16)
    except ValueError:
        return None


@dataclass(slots=True)
class _PendingCall:
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Choice:
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    unquoter: EnumUnquoter | None = None
    finished: bool = False
    logprobs: list[TokenLogprob] = field(default_factory=list)  # not yet on any PartDelta
    citations: list[Citation] = field(default_factory=list)  # a web search's url_citations

    def take_logprobs(self) -> tuple[TokenLogprob, ...]:
        held, self.logprobs = tuple(self.logprobs), []
        return held


@dataclass(slots=True)
class _StreamState:
    request: GenerateRequest
    model_version: str
    started: bool = False
    done: bool = False
    usage: Usage | None = None
    choices: dict[int, _Choice] = field(default_factory=dict)

    def choice(self, index: int) -> _Choice:
        if index not in self.choices:
            is_enum = self.request.output is not None and self.request.output.kind == "enum"
            self.choices[index] = _Choice(unquoter=EnumUnquoter() if is_enum else None)
        return self.choices[index]


async def decode_stream(
    frames: AsyncIterable[SSEFrame], request: GenerateRequest, model_version: str
) -> AsyncGenerator[StreamEvent, None]:
    state = _StreamState(request, model_version)
    async for frame in frames:
        if frame.data.strip() == "[DONE]":
            state.done = True
            break
        for event in _events(state, _chunk(frame)):
            yield event
    if not state.done and not _all_finished(state):
        raise UpstreamError("upstream closed the stream early",
                            failure_class=FailureClass.TRANSIENT, http_status=503,
                            status="UNAVAILABLE")
    for index, choice in state.choices.items():  # [DONE] before a choice's finish_reason
        if choice.logprobs:
            yield PartDelta(TextPart(""), index, choice.take_logprobs())
    if state.usage is not None:
        usage = state.usage
        yield UsageReported(replace(usage, searches=usage.searches + searches(state.request)))


def _chunk(frame: SSEFrame) -> dict[str, Any]:
    try:
        chunk = orjson.loads(frame.data)
    except orjson.JSONDecodeError:
        raise unreadable("a stream chunk is not JSON") from None
    if not isinstance(chunk, dict):
        raise unreadable("a stream chunk is not a JSON object")
    if chunk.get("error") is not None or frame.event == "error":
        raise classify_stream_error(frame.data.encode())
    return chunk


def _all_finished(state: _StreamState) -> bool:
    return bool(state.choices) and all(choice.finished for choice in state.choices.values())


def _events(state: _StreamState, chunk: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if not state.started:
        state.started = True
        created = chunk.get("created")
        events.append(StreamStarted(
            state.model_version, new_response_id(),
            float(created) if isinstance(created, int | float) else time.time(),
        ))
    usage = answer_usage(chunk)
    if usage is not None:
        state.usage = usage
    choices = chunk.get("choices")
    for raw in choices if isinstance(choices, list) else []:
        if isinstance(raw, dict):
            events.extend(_choice_events(state, raw))
    return events


def _choice_events(state: _StreamState, raw: dict[str, Any]) -> list[StreamEvent]:
    index = raw.get("index")
    index = index if isinstance(index, int) else 0
    choice = state.choice(index)
    delta = raw.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    events: list[StreamEvent] = []
    choice.logprobs.extend(decode_logprobs(raw))
    thought = reasoning_text(delta)
    if thought is not None and wants_thoughts(state.request):
        events.append(PartDelta(ReasoningPart(thought), index))
    content = delta.get("content")
    if isinstance(content, str) and content:
        text = choice.unquoter.feed(content) if choice.unquoter else content
        if text:
            events.append(PartDelta(TextPart(text), index, choice.take_logprobs()))
    _collect_calls(choice, delta.get("tool_calls"))
    choice.citations.extend(url_citations(delta.get("annotations")))
    reason = finish_reason(raw.get("finish_reason"))
    if reason is not None and not choice.finished:
        events.extend(_finish(choice, index, reason, state.request))
    return events


def _collect_calls(choice: _Choice, fragments: object) -> None:
    for position, fragment in enumerate(fragments if isinstance(fragments, list) else []):
        if not isinstance(fragment, dict):
            continue
        # Servers that omit the index send each call whole, one per list position.
        slot = fragment.get("index")
        pending = choice.calls.setdefault(slot if isinstance(slot, int) else position,
                                          _PendingCall())
        if isinstance(fragment.get("id"), str) and fragment["id"]:
            pending.call_id = fragment["id"]
        function = fragment.get("function")
        if isinstance(function, dict):
            # The name comes once, whole; a server that repeats it must not double it.
            if isinstance(function.get("name"), str) and function["name"]:
                pending.name = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                pending.arguments.append(arguments)
            elif isinstance(arguments, dict):  # a few servers send the object itself
                pending.arguments.append(orjson.dumps(arguments).decode())


def _finish(choice: _Choice, index: int, reason: FinishReason,
            request: GenerateRequest) -> list[StreamEvent]:
    choice.finished = True
    events: list[StreamEvent] = []
    for slot in sorted(choice.calls):
        pending = choice.calls[slot]
        arguments = parse_arguments("".join(pending.arguments))
        if not pending.name or arguments is None:
            reason = FinishReason.MALFORMED_TOOL_CALL
            continue
        call = ToolCallPart(pending.name, arguments, pending.call_id)
        events.append(PartDelta(call, index, choice.take_logprobs()))
    choice.calls.clear()
    if choice.logprobs:
        events.append(PartDelta(TextPart(""), index, choice.take_logprobs()))
    events.append(CandidateFinished(reason, index, grounding_of(choice.citations, request)))
    return events
