"""Canonical responses → OpenAI Response objects (we serve the Responses dialect). The pieces
the stream encoder shares (ids, output items, usage, status, the echoed settings) live here,
so that a stream's final `response.completed` and a whole answer say the same things.

The answer echoes the request's settings as OpenAI does (`Frame.settings`): instructions,
tools, tool_choice, temperature, top_p, text, reasoning, max_output_tokens, parallel_tool_calls,
store, metadata, truncation, top_logprobs, user, safety_identifier, prompt_cache_key,
service_tier, with OpenAI's defaults where the caller gave none.

Status: MAX_TOKENS → "incomplete" (reason "max_output_tokens"); SAFETY and RECITATION →
"incomplete" (reason "content_filter"); anything else → "completed". Output items in the order
the model produced them: reasoning (its text as one summary_text), message (output_text with
annotations [] and, when asked, logprobs), function_call (a `call_id` the upstream gave, else
one derived from the response id; a namespaced function's flat name split back into
`namespace` and `name`). `output_tokens` includes reasoning tokens, as OpenAI counts.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateResponse,
    ReasoningPart,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.responses.caller_params import LOGPROBS
from cometgate.dialects.responses.reasoning_state import INCLUDE, StateEntries
from cometgate.dialects.responses.tool_namespaces import namespaced_names
from cometgate.dialects.responses.web_search import WEB_SEARCH_TYPES, citations_of, search_items
from cometgate.dialects.sealed_state import StateSeal

_VERY_UNLIKELY = -9999.0  # OpenAI's log probability for "no finite value"
_INCOMPLETE = {FinishReason.MAX_TOKENS: "max_output_tokens",
               FinishReason.SAFETY: "content_filter",
               FinishReason.RECITATION: "content_filter"}


@dataclass(frozen=True, slots=True)
class Frame:
    """What every answer to one request repeats: its id, its creation time, the model as the
    caller named it, the echoed settings, and what `include` asked for."""

    id: str
    created_at: int
    model: str
    settings: Mapping[str, Any]
    include: tuple[str, ...] = ()
    seal: StateSeal | None = None  # seals reasoning state (reasoning_state)
    kept: bool = False  # the answer is stored, so its reasoning state is sealed in any case
    # flat tool name → (namespace, function name), to give calls back their namespace
    namespaced: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def wants_logprobs(self) -> bool:
        return LOGPROBS in self.include

    @property
    def seals_reasoning(self) -> bool:
        return self.seal is not None and (self.kept or INCLUDE in self.include)

    def body(self, status: str, output: list[dict[str, Any]], usage: Usage | None, *,
             incomplete: str | None = None, error: dict[str, Any] | None = None,
             ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": self.model,
            "output": output,
            "previous_response_id": None,
            **self.settings,
            "usage": usage_body(usage) if usage is not None else None,
        }


def new_frame(document: Mapping[str, Any], include: tuple[str, ...] = (), *,
              seal: StateSeal | None = None, kept: bool = False) -> Frame:
    """The frame of an answer to `document` (a request read by read_responses_document)."""
    return Frame(item_id("resp"), int(time.time()), str(document["model"]),
                 echoed_settings(document), include, seal, kept,
                 namespaced_names(document.get("tools")))


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def call_id(frame_id: str, position: int) -> str:
    """A call id for a call the upstream gave none: the same for the same call of the same
    response."""
    return "call_" + hashlib.sha256(f"{frame_id}/{position}".encode()).hexdigest()[:24]


def status_of(reason: FinishReason | None) -> tuple[str, str | None]:
    """(status, the incomplete reason or None)."""
    incomplete = _INCOMPLETE.get(reason) if reason is not None else None
    return ("incomplete" if incomplete else "completed"), incomplete


def usage_body(usage: Usage) -> dict[str, Any]:
    output = usage.output_tokens + usage.thoughts_tokens
    return {
        "input_tokens": usage.prompt_tokens,
        # Writes to a prompt cache are not reported by every upstream: 0, as OpenAI says
        # when it wrote none.
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.thoughts_tokens},
        "total_tokens": usage.prompt_tokens + output,
    }


def logprob_entries(entries: Sequence[TokenLogprob]) -> list[dict[str, Any]]:
    return [{**_logprob(entry.token, entry.logprob),
             "top_logprobs": [_logprob(token, value) for token, value in entry.top]}
            for entry in entries]


def _logprob(token: str, value: float) -> dict[str, Any]:
    return {"token": token, "logprob": value if math.isfinite(value) else _VERY_UNLIKELY,
            "bytes": list(token.encode("utf-8", "replace"))}


def text_part(text: str, logprobs: list[dict[str, Any]] | None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": []}
    if logprobs is not None:
        part["logprobs"] = logprobs
    return part


def message_item(item: str, text: str, status: str,
                 logprobs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {"id": item, "type": "message", "status": status, "role": "assistant",
            "content": [text_part(text, logprobs)]}


def reasoning_item(item: str, text: str) -> dict[str, Any]:
    return {"id": item, "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}] if text else []}


def function_call_item(item: str, call: ToolCallPart, the_call_id: str, status: str,
                       namespaced: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    body = {"id": item, "type": "function_call", "status": status, "call_id": the_call_id,
            "name": call.name, "arguments": arguments_of(call)}
    if call.name in namespaced:
        body["namespace"], body["name"] = namespaced[call.name]
    return body


def arguments_of(call: ToolCallPart) -> str:
    return orjson.dumps(dict(call.arguments)).decode()


@dataclass(slots=True)
class _Output:
    """Output items gathered from a candidate's parts: consecutive text makes one message,
    consecutive reasoning one reasoning item, each call its own item."""

    frame: Frame
    status: str
    items: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    states: dict[str, StateEntries] = field(default_factory=dict)  # reasoning item id → state

    def add(self, part: object, logprobs: list[dict[str, Any]] | None) -> None:
        if self.frame.seals_reasoning and not self._stash_signature(part):
            return
        last = self.items[-1] if self.items else None
        if isinstance(part, TextPart):
            if last is not None and last["type"] == "message":
                content = last["content"][0]
                content["text"] += part.text
                return
            self.items.append(message_item(item_id("msg"), part.text, self.status, logprobs))
        elif isinstance(part, ReasoningPart):
            if last is not None and last["type"] == "reasoning" and (
                last["summary"] or self.frame.seals_reasoning
            ):
                if last["summary"]:
                    last["summary"][0]["text"] += part.text
                elif part.text:
                    last["summary"].append({"type": "summary_text", "text": part.text})
            else:
                self.items.append(reasoning_item(item_id("rs"), part.text))
            if self.frame.seals_reasoning:
                self._state().reasoning(part.text, part.signature)
        elif isinstance(part, ToolCallPart):
            the_id = part.call_id or call_id(self.frame.id, self.calls)
            self.calls += 1
            self.items.append(function_call_item(item_id("fc"), part, the_id, "completed",
                                                 self.frame.namespaced))
        # media and tool results have no place among a response's output items

    def _stash_signature(self, part: object) -> bool:
        """Put the signature of a text or call part into the reasoning state before it;
        False when nothing of the part is left to add."""
        signature = getattr(part, "signature", None)
        if signature is None or isinstance(part, ReasoningPart):
            return True
        if isinstance(part, TextPart) and not part.text:
            self._state().bare_signature(signature)
            return False
        self._state().next_signature(signature)
        return True

    def _state(self) -> StateEntries:
        """The state of the last output item, a reasoning item (one is opened if needed)."""
        last = self.items[-1] if self.items else None
        if last is None or last["type"] != "reasoning":
            last = reasoning_item(item_id("rs"), "")
            self.items.append(last)
        return self.states.setdefault(last["id"], StateEntries())

    def sealed_items(self) -> list[dict[str, Any]]:
        seal = self.frame.seal
        if not self.frame.seals_reasoning or seal is None:
            return self.items
        return [{**item, "encrypted_content": self.states.get(item["id"], StateEntries())
                 .sealed(seal)} if item["type"] == "reasoning" else item
                for item in self.items]


def encode_response(response: GenerateResponse, frame: Frame) -> dict[str, Any]:
    """The Response object of a whole answer (the first candidate: a Responses request asks
    for one)."""
    candidate = response.candidates[0] if response.candidates else Candidate((), None)
    status, incomplete = status_of(candidate.finish_reason)
    output = _Output(frame, status)
    logprobs = logprob_entries(candidate.logprobs) if frame.wants_logprobs else None
    for part in candidate.parts:
        output.add(part, logprobs)
    items = output.sealed_items()
    if candidate.grounding is not None:
        items = _grounded(items, candidate, frame)
    return frame.body(status, items, response.usage, incomplete=incomplete)


def _grounded(items: list[dict[str, Any]], candidate: Candidate,
              frame: Frame) -> list[dict[str, Any]]:
    """The searches' items before the first message (the model searched before it wrote),
    and each message's citations on its text."""
    grounding = candidate.grounding
    assert grounding is not None
    start = 0
    for item in items:
        if item["type"] == "message":
            content = item["content"][0]
            content["annotations"] = citations_of(grounding, start, content["text"])
            start += len(content["text"])
    at = next((n for n, item in enumerate(items) if item["type"] == "message"), len(items))
    searches = search_items(grounding, frame.id, "completed", frame.include)
    return [*items[:at], *searches, *items[at:]]


def encode_input_tokens(total: int) -> bytes:
    return orjson.dumps({"object": "response.input_tokens", "input_tokens": total})


# --- the echoed settings -----------------------------------------------------------------------


def echoed_settings(document: Mapping[str, Any]) -> dict[str, Any]:
    """The request's settings as OpenAI's answer repeats them, with OpenAI's defaults."""
    text = document.get("text") or {}
    reasoning = document.get("reasoning") or {}
    return {
        "background": document.get("background") is True,
        "instructions": document.get("instructions"),
        "max_output_tokens": document.get("max_output_tokens"),
        "max_tool_calls": document.get("max_tool_calls"),
        "metadata": document.get("metadata") or {},
        "parallel_tool_calls": _given(document, "parallel_tool_calls", True),
        "previous_response_id": document.get("previous_response_id"),
        "prompt_cache_key": document.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"),
                      "summary": reasoning.get("summary") or reasoning.get("generate_summary")},
        "safety_identifier": document.get("safety_identifier"),
        "service_tier": _tier(document.get("service_tier")),
        "store": _given(document, "store", True),
        "temperature": _given(document, "temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"},
                 "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": _given(document, "tool_choice", "auto"),
        "tools": [_tool(tool) for tool in document.get("tools") or ()],
        "top_logprobs": _given(document, "top_logprobs", 0),
        "top_p": _given(document, "top_p", 1.0),
        "truncation": _given(document, "truncation", "disabled"),
        "user": document.get("user"),
    }


def _given(document: Mapping[str, Any], key: str, default: object) -> Any:
    value = document.get(key)
    return default if value is None else value


def _tier(value: object) -> str:
    return "default" if value in (None, "auto") else str(value)


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") in WEB_SEARCH_TYPES:
        return {**tool, "search_context_size": tool.get("search_context_size") or "medium",
                "user_location": tool.get("user_location")}
    if tool.get("type") == "namespace":
        return {"type": "namespace", "name": tool.get("name"),
                "description": tool.get("description"),
                "tools": [_tool(function) for function in tool.get("tools") or ()]}
    return {"type": "function", "name": tool.get("name"),
            "description": tool.get("description"), "parameters": tool.get("parameters"),
            "strict": tool.get("strict")}
