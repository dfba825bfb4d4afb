"""Two fields of an OpenAI chat message read the same whichever way it travels: an assistant
turn a caller sends back (`caller_messages`, and the Responses API's function calls) and an
answer or stream chunk from an upstream (`upstream_response`, `upstream_stream`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def reasoning_text(message: Mapping[str, Any]) -> str | None:
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return value if isinstance(value, str) and value else None


def parse_arguments(raw: object) -> dict[str, Any] | None:
    """A tool call's JSON-string arguments as an object, or None when malformed. Some servers
    send "" (or nothing) for a call without arguments."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):  # a few servers send the object itself
        return raw
    if not isinstance(raw, str):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
