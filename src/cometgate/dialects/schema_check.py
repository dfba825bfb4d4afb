"""Is a caller's JSON Schema (a response schema, a function's parameters) well formed?

A malformed schema is the caller's fault and must be refused as theirs, in their dialect,
before it reaches an upstream: the bundled model's worker builds a grammar from it and would
fail on it as on an internal fault, which counts against the model's circuit for every caller.

The check is the shape the JSON Schema meta-schema gives each keyword the gateway or an
upstream acts on (2020-12, with the draft-07 and OpenAPI spellings callers still send); unknown
keywords are left alone, as JSON Schema says. It walks the schema with an explicit stack, so a
deeply nested schema costs memory in proportion to its size, never a recursion error. Every
message a dialect gives for a bad schema is worded here, so all dialects say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")

_COUNTS = frozenset({"minLength", "maxLength", "minItems", "maxItems", "minProperties",
                     "maxProperties", "minContains", "maxContains"})
_NUMBERS = frozenset({"minimum", "maximum"})
# Numbers since draft 6; booleans in draft 4 and OpenAPI 3.0, which Gemini's schemas follow.
_BOUNDS = frozenset({"exclusiveMinimum", "exclusiveMaximum"})
_STRINGS = frozenset({"pattern", "format", "title", "description", "$ref", "$id", "$schema",
                      "$anchor", "$comment"})
_BOOLEANS = frozenset({"uniqueItems", "nullable", "readOnly", "writeOnly", "deprecated"})
_SCHEMAS = frozenset({"additionalProperties", "contains", "not", "if", "then", "else",
                      "propertyNames", "unevaluatedItems", "unevaluatedProperties",
                      "additionalItems"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})


@dataclass(frozen=True, slots=True)
class SchemaFault:
    """One problem: `path` is the keyword's place in the schema, dotted from its root
    ("properties.name.maxLength"); `keyword` the keyword itself."""

    path: str
    keyword: str
    problem: str  # "must be a non-negative integer"
    value: object

    def describe(self) -> str:
        """The sentence every dialect gives the caller."""
        where = self.path.removesuffix(self.keyword).rstrip(".")
        place = f" at '{where}'" if where else ""
        return (f"Invalid JSON Schema: '{self.keyword}'{place} {self.problem}, got "
                f"{_shown(self.value)}.")


def schema_violation(schema: object, field: str) -> tuple[str, str] | None:
    """(the keyword's full path from the request's `field` holding the schema, the sentence
    for the caller), or None for a well-formed schema."""
    fault = schema_fault(schema)
    if fault is None:
        return None
    return (f"{field}.{fault.path}" if fault.path else field), fault.describe()


# A place in the schema as a chain (parent, segment), joined into a dotted path only for a
# fault: building every node's path string would cost the square of the depth.
_Place = tuple["_Place", str] | None


def schema_fault(schema: object) -> SchemaFault | None:
    """The first problem found in `schema` (depth first, in document order), or None."""
    pending: list[tuple[object, _Place]] = [(schema, None)]
    while pending:
        node, place = pending.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, Mapping):
            path = _dotted(place)
            return SchemaFault(path, path or "schema", "must be a JSON Schema (an object or a "
                               "boolean)", node)
        children: list[tuple[object, _Place]] = []
        for keyword, value in node.items():
            where: _Place = (place, str(keyword))
            problem = _keyword_problem(str(keyword), value, where, children)
            if problem is not None:
                return SchemaFault(_dotted(where), str(keyword), problem, value)
        pending.extend(reversed(children))
    return None


def _dotted(place: _Place) -> str:
    segments: list[str] = []
    while place is not None:
        place, segment = place
        segments.append(segment)
    return ".".join(reversed(segments))


def _keyword_problem(keyword: str, value: object, where: _Place,
                     children: list[tuple[object, _Place]]) -> str | None:
    """What is wrong with one keyword's value, or None; subschemas go to `children`."""
    if keyword in _SCHEMAS:
        children.append((value, where))
        return None
    if keyword == "items":  # one schema, or (draft 4-7) a list of them
        if isinstance(value, list):
            children.extend((item, (where, str(i))) for i, item in enumerate(value))
        else:
            children.append((value, where))
        return None
    if keyword in _SCHEMA_LISTS:
        if not isinstance(value, list) or not value:
            return "must be a non-empty array of schemas"
        children.extend((item, (where, str(i))) for i, item in enumerate(value))
        return None
    if keyword in _SCHEMA_MAPS:
        if not isinstance(value, Mapping):
            return "must be an object whose values are schemas"
        children.extend((item, (where, str(name))) for name, item in value.items())
        return None
    check = _SCALAR_CHECKS.get(keyword)
    return None if check is None else check(value)


def _count(value: object) -> str | None:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if whole and not isinstance(value, bool) and value >= 0:  # type: ignore[operator]
        return None
    return "must be a non-negative integer"


def _number(value: object) -> str | None:
    return None if _is_number(value) else "must be a number"


def _bound(value: object) -> str | None:
    return None if _is_number(value) or isinstance(value, bool) else "must be a number"


def _multiple(value: object) -> str | None:
    return None if _is_number(value) and value > 0 else (  # type: ignore[operator]
        "must be a number greater than 0")


def _string(value: object) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be a boolean"


def _type(value: object) -> str | None:
    names = value if isinstance(value, list) else [value]
    if names and all(name in _TYPES for name in names) and len(set(names)) == len(names):
        return None
    return f"must be one of {', '.join(_TYPES)}, or a non-empty array of distinct ones"


def _required(value: object) -> str | None:
    if isinstance(value, list) and all(isinstance(name, str) for name in value) and len(
            set(value)) == len(value):
        return None
    return "must be an array of distinct property names (strings)"


def _enum(value: object) -> str | None:
    return None if isinstance(value, list) and value else "must be a non-empty array"


def _dependent_required(value: object) -> str | None:
    if isinstance(value, Mapping) and all(_required(names) is None for names in value.values()):
        return None
    return "must be an object whose values are arrays of property names"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


_SCALAR_CHECKS: dict[str, Callable[[object], str | None]] = {
    **dict.fromkeys(_COUNTS, _count),
    **dict.fromkeys(_NUMBERS, _number),
    **dict.fromkeys(_BOUNDS, _bound),
    **dict.fromkeys(_STRINGS, _string),
    **dict.fromkeys(_BOOLEANS, _boolean),
    "multipleOf": _multiple,
    "type": _type,
    "required": _required,
    "enum": _enum,
    "dependentRequired": _dependent_required,
}


def _shown(value: object) -> str:
    """The offending value as JSON when it is a scalar; a container only by its kind (it may
    be large or deep)."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        text = orjson.dumps(value[:60] + ("..." if len(value) > 60 else "")).decode()
        return text
    if isinstance(value, float) and value != value:
        return "NaN"
    return orjson.dumps(value).decode() if isinstance(value, int | float | bool) or (
        value is None) else type(value).__name__
