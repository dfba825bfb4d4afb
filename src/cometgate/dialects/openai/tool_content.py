"""A tool message's `content` (a string) and a canonical tool result's `response` (an object),
both ways, so that OpenAI → canonical → OpenAI gives the caller's content back.

    content                         response
    a JSON object, except below     that object           (re-encoded as compact JSON)
    anything else                   {"content": <text>}   (sent back as the bare text)

A JSON object whose only member is the string "content" is itself wrapped, so that the bare
text is never mistaken for it on the way back. The `{"content": …}` form is also what a
Gemini-dialect caller sees as the function response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import JSON

_TEXT_KEY = "content"


def tool_result_response(content: str) -> dict[str, JSON]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and not _is_wrapped_text(value):
        return value
    return {_TEXT_KEY: content}


def tool_message_content(response: Mapping[str, JSON]) -> str:
    text = response.get(_TEXT_KEY)
    if len(response) == 1 and isinstance(text, str):
        return text
    return orjson.dumps(dict(response)).decode()


def _is_wrapped_text(response: Mapping[str, Any]) -> bool:
    return len(response) == 1 and isinstance(response.get(_TEXT_KEY), str)
