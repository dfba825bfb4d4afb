"""What a response store keeps of one Responses call: the Response object as the caller got it
and the input items as OpenAI lists them (`GET /v1/responses/{id}/input_items`): every item
with an `id`, message content as typed parts. Pure: the store that persists a record lives
outside the dialect (the routes hand it every record whose request has `store` on)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cometgate.dialects.responses.caller_response import item_id

_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
              "reasoning": "rs"}


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    response: Mapping[str, Any]  # the Response object, final (completed/incomplete/failed)
    input_items: tuple[Mapping[str, Any], ...]
    request: Mapping[str, Any]  # the caller's request body, as read


def response_record(request: Mapping[str, Any], response: Mapping[str, Any]) -> ResponseRecord:
    return ResponseRecord(response, input_items(request.get("input")), request)


def input_items(raw: object) -> tuple[Mapping[str, Any], ...]:
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        return ()
    return tuple(_item(item) for item in raw if isinstance(item, dict))


def _item(item: Mapping[str, Any]) -> dict[str, Any]:
    kind = item.get("type") or "message"
    listed = {**item, "type": kind}
    listed.setdefault("id", item_id(_ID_PREFIX.get(str(kind), "item")))
    if kind == "message":
        listed.setdefault("status", "completed")
        content = item.get("content")
        if isinstance(content, str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            listed["content"] = [{"type": part, "text": content}]
    return listed
