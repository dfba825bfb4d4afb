"""Gemini's OpenAPI-subset `Schema` (normalised by protojson) → an equivalent JSON Schema.

Invariant: a value valid under the Gemini schema is valid under the result and vice versa,
for the keywords Gemini defines; `propertyOrdering` rides along as an annotation, which JSON
Schema validators ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Normalised key → JSON Schema keyword, copied unchanged.
_COPIED = {
    "format": "format",
    "title": "title",
    "description": "description",
    "pattern": "pattern",
    "minimum": "minimum",
    "maximum": "maximum",
    "default": "default",
    "required": "required",
    "min_items": "minItems",
    "max_items": "maxItems",
    "min_length": "minLength",
    "max_length": "maxLength",
    "min_properties": "minProperties",
    "max_properties": "maxProperties",
    "property_ordering": "propertyOrdering",
}


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one normalised Gemini Schema (snake_case keys, upper-case type names)."""
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if kind and kind != "TYPE_UNSPECIFIED":
        out["type"] = kind.lower()
    for key, keyword in _COPIED.items():
        if key in schema:
            out[keyword] = schema[key]
    if out.get("format") == "enum":
        del out["format"]  # Gemini's marker for string enums; `enum` itself says it
    if "enum" in schema:
        out["enum"] = list(schema["enum"])
    if "example" in schema:
        out["examples"] = [schema["example"]]
    if "items" in schema:
        out["items"] = to_json_schema(schema["items"])
    if "properties" in schema:
        out["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
    if "any_of" in schema:
        out["anyOf"] = [to_json_schema(item) for item in schema["any_of"]]
    if schema.get("nullable"):
        _allow_null(out)
    return out


def _allow_null(out: dict[str, Any]) -> None:
    if "type" in out:
        if out["type"] != "null":
            out["type"] = [out["type"], "null"]
    elif "anyOf" in out:
        out["anyOf"].append({"type": "null"})
    if "enum" in out and None not in out["enum"]:
        out["enum"].append(None)
