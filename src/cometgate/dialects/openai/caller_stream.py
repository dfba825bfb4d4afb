"""Canonical stream events → OpenAI `chat.completion.chunk` SSE frames (we serve the OpenAI
dialect).

Framing is OpenAI's: each event is exactly `data: <one-line JSON>\\n\\n`, and a stream that
ends well ends with `data: [DONE]\\n\\n`. Every chunk repeats the same id, created and model.
The first chunk of each choice carries `{"role": "assistant", "content": ""}`; text goes in
`delta.content`, reasoning in `delta.reasoning_content` (as OpenAI-compatible reasoning servers
send it), each whole tool call in one `delta.tool_calls` entry whose `index` counts that
choice's calls. With `include_usage`, every chunk has `"usage": null` and one last chunk with
no choices carries the usage, as OpenAI sends it for `stream_options.include_usage`.
A delta's log probabilities go in its chunk's `choices[].logprobs` (null elsewhere); a delta
that carries log probabilities but no text still gets a chunk, with `"content": ""`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.canonical import (
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.openai.caller_errors import native_openai_body, openai_error
from cometgate.dialects.openai.caller_response import (
    completion_id,
    finish_reason,
    logprobs_body,
    tool_call_body,
    tool_call_id,
    usage_body,
)
from cometgate.dialects.upstream_answers import new_response_id
from cometgate.errors import GatewayError

DONE = b"data: [DONE]\n\n"


def sse_frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"  # orjson never emits a newline


@dataclass(slots=True)
class _Choice:
    calls: int = 0  # tool calls sent so far: the next call's index


class ChatChunkEncoder:
    """One per response. Feed it the events in order; `end()` once the events are over, or
    `fail()` instead when the stream breaks (an error frame and no [DONE])."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._response_id = ""
        self._id = ""
        self._created = 0
        self._choices: dict[int, _Choice] = {}
        self._usage: Usage | None = None

    def feed(self, event: StreamEvent) -> list[bytes]:
        if isinstance(event, StreamStarted):
            self._start(event.response_id, event.created)
            return []
        if isinstance(event, UsageReported):
            self._usage = event.usage
            return []
        if not self._id:  # a stream always starts with StreamStarted; be safe regardless
            self._start(new_response_id(), time.time())
        frames = self._opening(event.index)
        if isinstance(event, PartDelta):
            delta = self._delta(event)
            if not delta and event.logprobs:
                delta = {"content": ""}
            if delta:
                frames.append(self._chunk(event.index, delta, logprobs=logprobs_body(
                    event.logprobs)))
        else:
            made_calls = self._choices[event.index].calls > 0
            frames.append(self._chunk(event.index, {}, finish_reason(event.reason, made_calls)))
        return frames

    def end(self) -> list[bytes]:
        frames: list[bytes] = []
        if self._include_usage and self._usage is not None:
            frames.append(sse_frame({**self._envelope([]), "usage": usage_body(self._usage)}))
        frames.append(DONE)
        return frames

    def fail(self, error: GatewayError) -> list[bytes]:
        body = native_openai_body(error) or openai_error(error)[1]
        return [sse_frame(body)]

    def _start(self, response_id: str, created: float) -> None:
        self._response_id = response_id
        self._id = completion_id(response_id)
        self._created = int(created)

    def _opening(self, index: int) -> list[bytes]:
        if index in self._choices:
            return []
        self._choices[index] = _Choice()
        return [self._chunk(index, {"role": "assistant", "content": ""})]

    def _delta(self, event: PartDelta) -> dict[str, Any]:
        part = event.part
        if isinstance(part, TextPart):
            return {"content": part.text} if part.text else {}
        if isinstance(part, ReasoningPart):
            return {"reasoning_content": part.text} if part.text else {}
        if isinstance(part, ToolCallPart):
            choice = self._choices[event.index]
            position, choice.calls = choice.calls, choice.calls + 1
            call_id = part.call_id or tool_call_id(self._response_id, event.index, position)
            return {"tool_calls": [{"index": position, **tool_call_body(part, call_id)}]}
        return {}  # media and tool results have no place in a chat completion chunk

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None, *,
               logprobs: dict[str, Any] | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return sse_frame(self._envelope([choice]))

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self._include_usage:
            envelope["usage"] = None
        return envelope
