"""A tool message's `content` (a string) and a canonical tool result's `response` (an object),
both ways, so that OpenAI → canonical → OpenAI gives the caller's content back.

    content                         response
    a JSON object, except below     that object           (re-encoded as compact JSON)
    anything else                   {"content": <text>}   (sent back as the bare text)

A JSON object whose only member is the string "content" (or "output", or "error") is itself
wrapped, so that the bare text is never mistaken for it on the way back. The
`{"content": …}` form is also what a Gemini-dialect caller sees as the function response.

Outbound, a response in Gemini's documented text form (`function_answers`: a lone "output"
or "error" string, which is also how an Anthropic caller's text tool_result arrives) is sent
as the bare text too. A tool message cannot mark a failed call: `failed_call` tells the
encoder when that mark is lost, so it can report it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import JSON
from cometgate.dialects.function_answers import answer_text

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
    answer = answer_text(response)
    if answer is not None:
        return answer[0]
    return orjson.dumps(dict(response)).decode()


def failed_call(response: Mapping[str, JSON]) -> bool:
    answer = answer_text(response)
    return answer is not None and answer[1]


def _is_wrapped_text(response: Mapping[str, Any]) -> bool:
    # Either form would be sent back as its bare text, so the caller's object is wrapped.
    text_form = len(response) == 1 and isinstance(response.get(_TEXT_KEY), str)
    return text_form or answer_text(response) is not None
