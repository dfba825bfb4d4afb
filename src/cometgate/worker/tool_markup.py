"""The text form of tool calls in the model's prompt and output, and parsing it back.

A call is `<tool_call>{"name": "<function>", "arguments": {…}}</tool_call>`; a result is
`<tool_response>…</tool_response>`. Parsing is strict: output counts as tool calls only when it is
nothing but well-formed calls (whitespace between them allowed); anything else is plain text.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import orjson

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>"

_CALL_BLOCK = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL
)


@dataclass(frozen=True, slots=True)
class ParsedToolCall:
    """A call read from model output; `arguments` is compact JSON text of an object."""

    id: str
    name: str
    arguments: str


def render_tool_call(name: str, arguments: str) -> str:
    """The prompt form of an earlier call; `arguments` is the JSON text the caller sent."""
    try:
        parsed: object = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        parsed = arguments  # keep what the caller sent rather than dropping the turn
    body = orjson.dumps({"name": name, "arguments": parsed}).decode()
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def render_tool_response(content: str) -> str:
    return f"{TOOL_RESPONSE_OPEN}{content}{TOOL_RESPONSE_CLOSE}"


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def parse_tool_calls(
    text: str, allowed_names: frozenset[str], *, truncated: bool = False
) -> list[ParsedToolCall] | None:
    """The calls in `text` if it consists solely of well-formed calls to `allowed_names`,
    otherwise None (the text is then ordinary content).

    `truncated`: generation hit its token limit. A small model under a parallel-call grammar
    may start yet another call and be cut off inside it; the calls completed before that are
    whole and valid, so they are kept and the unfinished tail is discarded."""
    stripped = text.strip()
    if not stripped.startswith(TOOL_CALL_OPEN):
        return None
    calls: list[ParsedToolCall] = []
    position = 0
    for match in _CALL_BLOCK.finditer(stripped):
        if stripped[position : match.start()].strip():
            return None
        call = _parse_call_body(match.group(1), allowed_names)
        if call is None:
            return None
        calls.append(call)
        position = match.end()
    tail = stripped[position:].strip()
    if truncated and calls and (tail.startswith(TOOL_CALL_OPEN) or TOOL_CALL_OPEN.startswith(tail)):
        return calls
    if not calls or tail:
        return None
    return calls


def could_become_tool_call(text: str) -> bool:
    """True while `text` (output so far) is still consistent with starting with a tool call."""
    head = text.lstrip()
    return TOOL_CALL_OPEN.startswith(head) or head.startswith(TOOL_CALL_OPEN)


def _parse_call_body(body: str, allowed_names: frozenset[str]) -> ParsedToolCall | None:
    try:
        payload = orjson.loads(body.strip())
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    name = payload.get("name")
    arguments = payload.get("arguments", {})
    if not isinstance(name, str) or name not in allowed_names:
        return None
    if not isinstance(arguments, dict):
        return None
    return ParsedToolCall(new_call_id(), name, orjson.dumps(arguments).decode())
