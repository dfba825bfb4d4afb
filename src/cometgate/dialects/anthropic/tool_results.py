"""How an Anthropic `tool_result` block and a canonical ToolResultPart.response map onto each
other, shared by the inbound decoder (a caller's block → response) and the outbound history
(response → an upstream's block).

A result from an Anthropic caller whose content is text (a string, or a list of text blocks,
joined by newlines; none at all is the empty text) becomes the response Gemini documents for
a function's answer (`function_answers`):

    {"output": <text>}      is_error absent or false
    {"error": <text>}       is_error true

so that every upstream reads the text itself: Gemini as the functionResponse's response,
OpenAI as the tool message's content, Anthropic as the block's content (with is_error).
Content holding other blocks (an image, a document, a search result) keeps its blocks:

    {"content": <the list of blocks>, "is_error": <bool>}   (is_error only when sent)

Any other response (a Gemini functionResponse, say) goes to Anthropic as its JSON text, and
is marked as a failed call when it holds only "error".

Invariant: `tool_result_fields(tool_result_response(block))` gives back a block that means
the same as the caller's: the same text (as one string) and the same failure mark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import JSON
from cometgate.dialects.function_answers import ERROR_KEY, answer_text, text_answer

# The blocks Anthropic accepts inside a tool_result's content.
TOOL_RESULT_BLOCK_TYPES = frozenset({"text", "image", "document", "search_result"})
_CALLER_KEYS = frozenset({"content", "is_error"})


def tool_result_response(content: str | list[Any] | None, is_error: bool | None) -> dict[str, JSON]:
    """The canonical response for a caller's (already validated) tool_result fields."""
    text = _text_of(content)
    if text is not None:
        return text_answer(text, failed=bool(is_error))
    response: dict[str, JSON] = {"content": orjson.loads(orjson.dumps(content))}
    if is_error is not None:
        response["is_error"] = is_error
    return response


def tool_result_fields(response: Mapping[str, JSON]) -> dict[str, Any]:
    """The `content` (and `is_error`) of the tool_result block that carries `response`."""
    text = answer_text(response)
    if text is not None:
        return {"content": text[0], "is_error": True} if text[1] else {"content": text[0]}
    if _from_caller(response):
        return dict(response)
    fields: dict[str, Any] = {"content": orjson.dumps(dict(response)).decode()}
    if set(response) == {ERROR_KEY}:
        fields["is_error"] = True
    return fields


def _text_of(content: str | list[Any] | None) -> str | None:
    if content is None or isinstance(content, str):
        return content or ""
    if all(block.get("type") == "text" for block in content):
        return "\n".join(block["text"] for block in content)
    return None


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
