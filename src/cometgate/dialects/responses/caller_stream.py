"""Canonical stream events → the Responses API's event stream (we serve the Responses dialect).

Framing is OpenAI's: each event is `event: <type>\\ndata: <one-line JSON>\\n\\n`, and every
event carries a `sequence_number` counting from 0. The grammar:

    response.created, response.in_progress                (the Response, in_progress)
    per output item, in order:
      message:    output_item.added, content_part.added, output_text.delta…,
                  output_text.done, content_part.done, output_item.done
      reasoning:  output_item.added, reasoning_summary_part.added,
                  reasoning_summary_text.delta…, reasoning_summary_text.done,
                  reasoning_summary_part.done, output_item.done
      call:       output_item.added, function_call_arguments.delta (a call arrives whole),
                  function_call_arguments.done, output_item.done
      search:     output_item.added, web_search_call.in_progress, web_search_call.searching,
                  web_search_call.completed, output_item.done
    exactly one of response.completed (with usage), response.incomplete, response.failed

A web search the upstream ran is known whole only when the candidate finishes (canonical
CandidateFinished.grounding): the open message then closes with its citations (an
output_text.annotation.added each, and annotations on the done part and item), and the
searches' items follow it.
    exactly one of response.completed (with usage), response.incomplete, response.failed

A stream that breaks after it started ends with an `error` event, then `response.failed`
holding what was produced so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    Grounding,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.responses.caller_errors import error_event_fields, response_error
from cometgate.dialects.responses.caller_response import (
    Frame,
    arguments_of,
    call_id,
    function_call_item,
    item_id,
    logprob_entries,
    message_item,
    reasoning_item,
    status_of,
    text_part,
)
from cometgate.dialects.responses.reasoning_state import StateEntries, shown_item
from cometgate.dialects.responses.web_search import citations_of, search_items
from cometgate.errors import GatewayError


def sse_event(payload: dict[str, Any]) -> bytes:
    kind: str = payload["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class _Open:
    """The message or reasoning item whose deltas are arriving."""

    kind: str  # "message" or "reasoning"
    id: str
    index: int
    start: int = 0  # a message's first character in the candidate's whole text
    text: str = ""
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    state: StateEntries = field(default_factory=StateEntries)  # a reasoning item's, sealed


class ResponseStreamEncoder:
    """One per response. Feed it the events in order; `end()` once they are over, or
    `fail()` instead when the stream breaks."""

    def __init__(self, frame: Frame) -> None:
        self._frame = frame
        self._sequence = 0
        self._started = False
        self._items: list[dict[str, Any]] = []
        self._open: _Open | None = None
        self._calls = 0
        self._reason: FinishReason | None = None
        self._usage: Usage | None = None
        self._grounding: Grounding | None = None
        self._written = 0  # characters of message text so far
        self.final: dict[str, Any] | None = None  # the last Response sent, once it is sent

    def feed(self, event: StreamEvent) -> list[bytes]:
        frames = self._opening()
        if isinstance(event, StreamStarted):
            return frames
        if isinstance(event, UsageReported):
            self._usage = event.usage
        elif isinstance(event, CandidateFinished):
            if event.index == 0:
                self._reason = event.reason
                self._grounding = event.grounding
                frames.extend(self._close())
                frames.extend(self._searches())
        elif event.index == 0:  # a Responses request asks for one candidate
            frames.extend(self._delta(event))
        return frames

    def end(self) -> list[bytes]:
        frames = [*self._opening(), *self._close()]
        status, incomplete = status_of(self._reason)
        body = self._frame.body(status, self._items, self._usage, incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        self.final = body
        frames.append(self._event(kind, response=self._shown(body)))
        return frames

    def fail(self, error: GatewayError) -> list[bytes]:
        frames = self._opening()
        fields = error_event_fields(error)
        frames.append(self._event("error", **fields))
        output = [*self._items, *self._unfinished()]
        body = self._frame.body("failed", output, self._usage,
                                error=response_error(error, fields["message"]))
        self.final = body
        frames.append(self._event("response.failed", response=self._shown(body)))
        return frames

    # --- pieces ----------------------------------------------------------------------------

    def _opening(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        body = self._frame.body("in_progress", [], None)
        return [self._event("response.created", response=body),
                self._event("response.in_progress", response=body)]

    def _delta(self, event: PartDelta) -> list[bytes]:
        if self._frame.seals_reasoning:
            return self._sealing_delta(event)
        return self._plain_delta(event)

    def _sealing_delta(self, event: PartDelta) -> list[bytes]:
        """As `_plain_delta`, with every signature kept in a reasoning item's state."""
        part = event.part
        signature = getattr(part, "signature", None)
        if isinstance(part, ReasoningPart):
            frames = self._plain_delta(event)
            frames.extend(self._reasoning_open())
            assert self._open is not None
            self._open.state.reasoning(part.text, signature)
            return frames
        if signature is None:
            return self._plain_delta(event)
        frames = self._reasoning_open()
        assert self._open is not None
        if isinstance(part, TextPart) and not part.text:
            self._open.state.bare_signature(signature)
            return frames
        self._open.state.next_signature(signature)
        return [*frames, *self._close(), *self._plain_delta(event)]

    def _reasoning_open(self) -> list[bytes]:
        if self._open is not None and self._open.kind == "reasoning":
            return []
        return [*self._close(), *self._start("reasoning")]

    def _plain_delta(self, event: PartDelta) -> list[bytes]:
        part = event.part
        if isinstance(part, TextPart):
            return self._text("message", part.text, event)
        if isinstance(part, ReasoningPart):
            return self._text("reasoning", part.text, event)
        if isinstance(part, ToolCallPart):
            return [*self._close(), *self._call(part)]
        return []  # media and tool results have no place among a response's output items

    def _text(self, kind: str, text: str, event: PartDelta) -> list[bytes]:
        logprobs = logprob_entries(event.logprobs) if self._frame.wants_logprobs else []
        if not text and not logprobs:
            return []
        frames = [] if self._open and self._open.kind == kind else [*self._close(),
                                                                    *self._start(kind)]
        current = self._open
        assert current is not None
        current.text += text
        if kind == "reasoning":
            frames.append(self._event("response.reasoning_summary_text.delta",
                                      item_id=current.id, output_index=current.index,
                                      summary_index=0, delta=text))
            return frames
        current.logprobs.extend(logprobs)
        self._written += len(text)
        frames.append(self._event("response.output_text.delta", item_id=current.id,
                                  output_index=current.index, content_index=0, delta=text,
                                  logprobs=logprobs))
        return frames

    def _start(self, kind: str) -> list[bytes]:
        current = _Open(kind, item_id("msg" if kind == "message" else "rs"), len(self._items),
                        self._written)
        self._open = current
        where = {"item_id": current.id, "output_index": current.index}
        if kind == "reasoning":
            return [
                self._event("response.output_item.added", output_index=current.index,
                            item={"id": current.id, "type": "reasoning", "summary": []}),
                self._event("response.reasoning_summary_part.added", **where, summary_index=0,
                            part={"type": "summary_text", "text": ""}),
            ]
        item = {"id": current.id, "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}
        return [
            self._event("response.output_item.added", output_index=current.index, item=item),
            self._event("response.content_part.added", **where, content_index=0,
                        part=text_part("", self._logprobs([]))),
        ]

    def _close(self) -> list[bytes]:
        current, self._open = self._open, None
        if current is None:
            return []
        where = {"item_id": current.id, "output_index": current.index}
        if current.kind == "reasoning":
            item = self._reasoning_item(current)
            summary = {"type": "summary_text", "text": current.text}
            frames = [
                self._event("response.reasoning_summary_text.done", **where, summary_index=0,
                            text=current.text),
                self._event("response.reasoning_summary_part.done", **where, summary_index=0,
                            part=summary),
            ]
        else:
            status, _ = status_of(self._reason)
            item = message_item(current.id, current.text, status,
                                self._logprobs(current.logprobs))
            cited = citations_of(self._grounding, current.start, current.text)
            item["content"][0]["annotations"] = cited
            frames = [
                self._event("response.output_text.annotation.added", **where,
                            content_index=0, annotation_index=number, annotation=annotation)
                for number, annotation in enumerate(cited)
            ]
            frames += [
                self._event("response.output_text.done", **where, content_index=0,
                            text=current.text, logprobs=current.logprobs),
                self._event("response.content_part.done", **where, content_index=0,
                            part=item["content"][0]),
            ]
        self._items.append(item)
        frames.append(self._event("response.output_item.done", output_index=current.index,
                                  item=shown_item(item, self._frame.include)))
        return frames

    def _searches(self) -> list[bytes]:
        """The items of the searches that grounded the candidate, after what it wrote; a
        message closed before the grounding was known gets its citations in the final
        Response."""
        if self._grounding is None:
            return []
        for item in self._items:
            if item["type"] == "message" and not item["content"][0]["annotations"]:
                start = self._message_start(item)
                item["content"][0]["annotations"] = citations_of(
                    self._grounding, start, item["content"][0]["text"])
        frames = []
        for item in search_items(self._grounding, self._frame.id, "completed",
                                 self._frame.include):
            index, where = len(self._items), {"item_id": item["id"]}
            self._items.append(item)
            frames += [
                self._event("response.output_item.added", output_index=index,
                            item={**item, "status": "in_progress"}),
                *(self._event(f"response.web_search_call.{stage}", **where, output_index=index)
                  for stage in ("in_progress", "searching", "completed")),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        return frames

    def _message_start(self, message: dict[str, Any]) -> int:
        start = 0
        for item in self._items:
            if item is message:
                break
            if item["type"] == "message":
                start += len(item["content"][0]["text"])
        return start

    def _call(self, part: ToolCallPart) -> list[bytes]:
        index, the_id = len(self._items), item_id("fc")
        the_call_id = part.call_id or call_id(self._frame.id, self._calls)
        self._calls += 1
        arguments = arguments_of(part)
        namespaced = self._frame.namespaced
        opened = {**function_call_item(the_id, part, the_call_id, "in_progress", namespaced),
                  "arguments": ""}
        done = function_call_item(the_id, part, the_call_id, "completed", namespaced)
        self._items.append(done)
        where = {"item_id": the_id, "output_index": index}
        return [
            self._event("response.output_item.added", output_index=index, item=opened),
            self._event("response.function_call_arguments.delta", **where, delta=arguments),
            self._event("response.function_call_arguments.done", **where,
                        arguments=arguments, name=done["name"]),
            self._event("response.output_item.done", output_index=index, item=done),
        ]

    def _unfinished(self) -> list[dict[str, Any]]:
        current = self._open
        if current is None:
            return []
        if current.kind == "reasoning":
            return [self._reasoning_item(current)]
        return [message_item(current.id, current.text, "incomplete",
                             self._logprobs(current.logprobs))]

    def _shown(self, body: dict[str, Any]) -> dict[str, Any]:
        """The Response as the caller sees it: `final` keeps the sealed reasoning state for
        the store, the caller gets it only when `include` asks."""
        return {**body, "output": [shown_item(item, self._frame.include)
                                   for item in body["output"]]}

    def _reasoning_item(self, current: _Open) -> dict[str, Any]:
        item = reasoning_item(current.id, current.text)
        seal = self._frame.seal
        if self._frame.seals_reasoning and seal is not None:
            item["encrypted_content"] = current.state.sealed(seal)
        return item

    def _logprobs(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        return entries if self._frame.wants_logprobs else None

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse_event(payload)

