"""Constrained output (JSON, enum) on Anthropic, as one forced tool call.

Anthropic has no response-format switch every model honours, but a forced tool call always
yields input that matches the tool's schema. So a JSON or enum request declares one tool,
`respond`, whose input schema is the wanted output, forces it with
`tool_choice {"type": "tool", "name": "respond"}`, and the call's input comes back to the caller
as the response text.

Anthropic wants a tool's `input_schema` to describe an object. A schema for anything else (an
array, a string, an enum) is wrapped as the one property `value` of an object and unwrapped on
the way back; `$defs`/`definitions` move up with the wrapper so that "#/$defs/…" references
still resolve. Enum output comes back as the bare value, as Gemini's text/x.enum does.

Invariant: `respond_tool(o)` and `output_text(o, …)` agree on whether `o` is wrapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import JSON, OutputFormat
from cometgate.errors import InvalidRequest

RESPOND_TOOL = "respond"
_WRAPPED = "value"
_DEFINITIONS = ("$defs", "definitions")


def respond_tool(output: OutputFormat) -> dict[str, Any]:
    return {
        "name": RESPOND_TOOL,
        "description": "Give the answer. Its input is the whole response.",
        "input_schema": _input_schema(output),
    }


def output_text(output: OutputFormat, tool_input: Mapping[str, Any]) -> str | None:
    """The response text for the `respond` call's input; None when the input does not hold
    the wrapped value (the call is then malformed)."""
    if not _is_wrapped(output):
        return orjson.dumps(dict(tool_input)).decode()
    if _WRAPPED not in tool_input:
        return None
    value = tool_input[_WRAPPED]
    if output.kind == "enum" and isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _is_wrapped(output: OutputFormat) -> bool:
    if output.kind == "enum":
        return True
    return output.schema is not None and output.schema.get("type") != "object"


def _input_schema(output: OutputFormat) -> dict[str, Any]:
    if output.kind == "enum" and output.schema is None:
        raise InvalidRequest(
            "an enum response needs a schema listing the allowed values",
            violations={"output.schema": "required for enum output"},
        )
    if output.schema is None:
        return {"type": "object"}  # any JSON object: what JSON mode without a schema yields
    schema: dict[str, JSON] = orjson.loads(orjson.dumps(output.schema))
    if not _is_wrapped(output):
        return schema
    hoisted = {key: schema.pop(key) for key in _DEFINITIONS if key in schema}
    return {"type": "object", "properties": {_WRAPPED: schema}, "required": [_WRAPPED],
            **hoisted}
