"""How an Anthropic `tool_result` block and a canonical ToolResultPart.response map onto each
other, shared by the inbound decoder (a caller's block → response) and the outbound history
(response → an upstream's block), so that a caller's result reaches an Anthropic upstream as
it was sent.

A result from an Anthropic caller becomes the response

    {"content": <the block's content, a string or its list of blocks>, "is_error": <bool>}

each key present only when the block had it. Any other response (a Gemini functionResponse,
say) goes to Anthropic as its JSON text, and is marked as a failed call when it holds only
"error" — Gemini's convention for reporting one.

Invariant: `tool_result_fields(tool_result_response(block))` gives back the block's `content`
and `is_error` unchanged, for every block the inbound decoder accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import JSON

# The blocks Anthropic accepts inside a tool_result's content.
TOOL_RESULT_BLOCK_TYPES = frozenset({"text", "image", "document", "search_result"})
_CALLER_KEYS = frozenset({"content", "is_error"})


def tool_result_response(content: str | list[Any] | None, is_error: bool | None) -> dict[str, JSON]:
    """The canonical response for a caller's (already validated) tool_result fields."""
    response: dict[str, JSON] = {}
    if content is not None:
        response["content"] = orjson.loads(orjson.dumps(content))
    if is_error is not None:
        response["is_error"] = is_error
    return response


def tool_result_fields(response: Mapping[str, JSON]) -> dict[str, Any]:
    """The `content` (and `is_error`) of the tool_result block that carries `response`."""
    if _from_caller(response):
        return dict(response)
    fields: dict[str, Any] = {"content": orjson.dumps(dict(response)).decode()}
    if set(response) == {"error"}:
        fields["is_error"] = True
    return fields


def _from_caller(response: Mapping[str, JSON]) -> bool:
    if not set(response) <= _CALLER_KEYS:
        return False
    if "is_error" in response and not isinstance(response["is_error"], bool):
        return False
    content = response.get("content")
    if content is None:
        return "content" not in response
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(block, dict) and block.get("type") in TOOL_RESULT_BLOCK_TYPES
        for block in content
    )
