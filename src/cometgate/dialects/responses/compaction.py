"""`POST /v1/responses/compact` and the `compaction` items it returns.

OpenAI's contract: the request names a `model`, the conversation (`input` and/or
`previous_response_id`) and optional `instructions`; the answer (`object:
"response.compaction"`) lists the conversation's user messages followed by one `compaction`
item whose `encrypted_content` stands for everything else, plus the `usage` of the pass. The
caller sends that output back as the start of its next `input`.

Here the model itself summarises the conversation (one generation through the normal
pipeline, on any upstream), and the summary is sealed (dialects/sealed_state, its own
purpose) into `encrypted_content`: only this gateway's secret opens it, and a changed token
is a 400. On the way in, a compaction item becomes a user message holding the summary,
introduced as such, where the item stood.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import GenerateResponse, TextPart
from cometgate.dialects.openai.caller_fields import missing
from cometgate.dialects.responses.caller_response import item_id, usage_body
from cometgate.dialects.responses.reasoning_state import unverified
from cometgate.dialects.sealed_state import SealedStateError, StateSeal

PURPOSE = "responses.compaction"
SUMMARY_REQUEST = (
    "Summarise the conversation above so that it can continue from your summary alone: the "
    "user's goals and constraints, what has been decided and done (with the results of tool "
    "calls that still matter), what is still open, and any names, paths, values or code the "
    "work depends on. Write the summary only, without addressing the user.")
SUMMARY_HEADER = "A summary of the earlier part of this conversation:\n\n"


def require_conversation(document: Mapping[str, Any]) -> None:
    """A compaction needs something to compact: `input`, `previous_response_id` or both."""
    if document.get("input") is None and document.get("previous_response_id") is None:
        raise missing("input")


def summarising_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The Responses request that asks the model for the summary: the conversation, then the
    request to summarise it; stored nowhere. The caller's `tools` go along, not to be called
    (`tool_choice` "none"): some upstreams refuse a history with tool calls and no tools."""
    own = document.get("input")
    items = [{"type": "message", "role": "user", "content": own}] if isinstance(own, str) \
        else list(own if isinstance(own, list) else ())
    asking = {"model": document["model"], "instructions": document.get("instructions"),
              "input": [*items, {"type": "message", "role": "user",
                                 "content": SUMMARY_REQUEST}],
              "store": False}
    if document.get("tools"):
        asking |= {"tools": document["tools"], "tool_choice": "none"}
    return asking


def compacted_body(document: Mapping[str, Any], response: GenerateResponse, seal: StateSeal,
                   created_at: int) -> dict[str, Any]:
    """The `response.compaction` object: the user messages of `document`'s conversation,
    then the sealed summary `response` gave."""
    return {
        "id": item_id("resp"),
        "object": "response.compaction",
        "created_at": created_at,
        "output": [*_user_messages(document.get("input")),
                   compaction_item(summary_text(response), seal)],
        "usage": usage_body(response.usage),
    }


def summary_text(response: GenerateResponse) -> str:
    candidate = response.candidates[0] if response.candidates else None
    parts = candidate.parts if candidate is not None else ()
    return "".join(part.text for part in parts if isinstance(part, TextPart))


def compaction_item(summary: str, seal: StateSeal) -> dict[str, Any]:
    token = seal.seal(orjson.dumps({"summary": summary}), purpose=PURPOSE)
    return {"id": item_id("cmp"), "type": "compaction", "encrypted_content": token}


def opened_summary(seal: StateSeal | None, item: Mapping[str, Any], where: str) -> str:
    """The summary sealed in a compaction item; InvalidRequest naming its
    `encrypted_content` when it does not open."""
    path = f"{where}.encrypted_content"
    token = item.get("encrypted_content")
    if not isinstance(token, str):
        raise unverified(path, "expected a string.")
    if seal is None:
        raise unverified(path, "this gateway keeps no secret to open it.")
    try:
        opened = orjson.loads(seal.open(token, purpose=PURPOSE))
    except SealedStateError as exc:
        raise unverified(path, f"{exc}.") from None
    return str(opened["summary"])


def _user_messages(raw: object) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    kept = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or item.get("role") != "user" \
                or (item.get("type") or "message") != "message":
            continue
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "input_text", "text": content}]
        kept.append({"id": item.get("id") or item_id("msg"), "type": "message",
                     "role": "user", "status": "completed", "content": content})
    return kept
