"""JSON Schema → GBNF (llama.cpp's grammar language), so sampled JSON always parses and validates.

Invariants:
- Every string the grammar accepts is JSON that validates against the schema, for the supported
  keywords: type (single or list), enum, const, anyOf/oneOf, allOf (object merge), $ref to local
  definitions (recursion allowed), properties/required/additionalProperties, items/prefixItems/
  minItems/maxItems, minLength/maxLength, string formats date, time, date-time and uuid, nullable,
  and a non-negative `minimum`/`exclusiveMinimum` (no minus sign). Keywords outside this list
  (pattern, maximum, multipleOf, …) are not enforced.
- Whitespace is bounded (at most one space at each optional spot) and numbers have a bounded
  count of digits, so the grammar never forces or invites endless output by itself.
- Rule names are prefixed, so several schemas can live in one grammar (one per tool).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

JsonSchema = Mapping[str, Any]

# Shared rules; names start with "j-" and never collide with per-schema rules, which are prefixed.
PRIMITIVE_RULES: dict[str, str] = {
    "sp": '" "?',
    "j-char": r'[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "j-string": r'"\"" j-char* "\""',
    "j-int": '"-"? j-uint',
    "j-uint": '"0" | j-posint',
    "j-posint": "[1-9] [0-9]{0,15}",
    "j-frac": '"." [0-9]{1,15}',
    "j-exp": '[eE] [-+]? [0-9]{1,3}',
    "j-number": "j-int j-frac? j-exp?",
    "j-unumber": "j-uint j-frac? j-exp?",
    "j-bool": '"true" | "false"',
    "j-null": '"null"',
    "j-value": "j-object | j-array | j-string | j-number | j-bool | j-null",
    "j-member": 'j-string ":" sp j-value',
    "j-object": '"{" sp (j-member ("," sp j-member)*)? "}"',
    "j-array": '"[" sp (j-value ("," sp j-value)*)? "]"',
    "j-date": '[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])',
    "j-time": (
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
        '("Z" | [-+] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])'
    ),
    "j-hex4": "[0-9a-fA-F]{4}",
    "j-uuid": 'j-hex4 j-hex4 "-" j-hex4 "-" j-hex4 "-" j-hex4 "-" j-hex4 j-hex4 j-hex4',
}

_FORMAT_BODIES = {
    "date": "j-date",
    "time": "j-time",
    "date-time": 'j-date "T" j-time',
    "uuid": "j-uuid",
}

_TYPE_RULES = {
    "string": "j-string",
    "number": "j-number",
    "integer": "j-int",
    "boolean": "j-bool",
    "null": "j-null",
    "object": "j-object",
    "array": "j-array",
}


class SchemaNotSupported(ValueError):
    """The schema cannot be turned into a grammar (bad $ref, `false` schema, not an object)."""


def gbnf_literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def json_literal(value: object) -> str:
    """A GBNF literal matching the compact JSON text of `value`."""
    return gbnf_literal(orjson.dumps(value).decode())


class GrammarRules:
    """An ordered set of named GBNF rules; primitives are added on first use."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = {}

    def add(self, name: str, body: str) -> str:
        """Adds `body` under a fresh name derived from `name`; returns the name used."""
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", name).strip("-").lower() or "r"
        unique, counter = base, 1
        while unique in self._rules or unique in PRIMITIVE_RULES:
            counter += 1
            unique = f"{base}-{counter}"
        self._rules[unique] = body
        return unique

    def reserve(self, name: str) -> str:
        """Claims a name whose body is set later (recursive $ref)."""
        return self.add(name, "")

    def set(self, name: str, body: str) -> None:
        self._rules[name] = body

    def render(self, root_body: str) -> str:
        """The full grammar text: `root`, the named rules, then the primitives they reach."""
        lines = [f"root ::= {root_body}"]
        lines += [f"{name} ::= {body}" for name, body in self._rules.items()]
        text = "\n".join(lines)
        lines += [f"{name} ::= {body}" for name, body in _reachable_primitives(text).items()]
        return "\n".join(lines) + "\n"


def _reachable_primitives(text: str) -> dict[str, str]:
    needed: dict[str, str] = {}
    pending = [text]
    while pending:
        chunk = pending.pop()
        for name in re.findall(r"\b(sp|j-[a-z0-9]+)\b", _without_literals(chunk)):
            if name in PRIMITIVE_RULES and name not in needed:
                needed[name] = PRIMITIVE_RULES[name]
                pending.append(PRIMITIVE_RULES[name])
    return dict(sorted(needed.items()))


def _without_literals(text: str) -> str:
    # Rule references never occur inside "…" literals or […] classes; drop those first.
    return re.sub(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]', " ", text)


class SchemaConverter:
    """Turns JSON Schemas into rules of one GrammarRules, resolving $ref against `root_schema`."""

    def __init__(self, rules: GrammarRules, root_schema: object, prefix: str) -> None:
        self._rules = rules
        self._root = root_schema
        self._prefix = prefix
        self._refs: dict[str, str] = {}

    def expression(self, schema: object, path: str = "") -> str:
        """A GBNF expression (a rule name or a short alternation) for values valid under
        `schema`."""
        if schema is True or schema == {}:
            return "j-value"
        if not isinstance(schema, Mapping):
            raise SchemaNotSupported(f"schema at {path or '/'} must be an object or true")
        if "$ref" in schema:
            return self._ref(str(schema["$ref"]))
        body = self._body(schema, path)
        if schema.get("nullable") is True:
            body = f"{body} | j-null"
        return self._rules.add(f"{self._prefix}{path}", body)

    def _body(self, schema: JsonSchema, path: str) -> str:
        if "const" in schema:
            return json_literal(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaNotSupported(f"enum at {path or '/'} must be a non-empty list")
            return " | ".join(json_literal(value) for value in values)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._union(schema[key], f"{path}-{key}")
        if "allOf" in schema:
            return self._body(_merge_all_of(schema), path)
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self._typed(schema, str(one), path) for one in kind)
        if kind is None:
            kind = _implied_type(schema)
        return self._typed(schema, None if kind is None else str(kind), path)

    def _union(self, options: object, path: str) -> str:
        if not isinstance(options, list) or not options:
            raise SchemaNotSupported(f"{path} must be a non-empty list of schemas")
        alternatives = [self.expression(option, f"{path}-{i}") for i, option in enumerate(options)]
        return " | ".join(alternatives)

    def _typed(self, schema: JsonSchema, kind: str | None, path: str) -> str:
        if kind == "object":
            return self._object(schema, path)
        if kind == "array":
            return self._array(schema, path)
        if kind == "string":
            return _string(schema)
        if kind in ("integer", "number"):
            return _numeric(schema, kind)
        if kind is None:
            return "j-value"
        if kind not in _TYPE_RULES:
            raise SchemaNotSupported(f"unknown type {kind!r} at {path or '/'}")
        return _TYPE_RULES[kind]

    def _object(self, schema: JsonSchema, path: str) -> str:
        properties = dict(schema.get("properties") or {})
        for name in schema.get("required") or []:
            properties.setdefault(str(name), {})
        extra = schema.get("additionalProperties", True)
        if not properties:
            if extra is False:
                return '"{" sp "}"'
            if isinstance(extra, Mapping) and extra:
                value = self.expression(extra, f"{path}-value")
                member = f'j-string ":" sp {value}'
                return f'"{{" sp ({member} ("," sp {member})*)? "}}"'
            return "j-object"
        required = set(map(str, schema.get("required") or []))
        pairs = [
            (name, f'{json_literal(name)} ":" sp {self.expression(sub, f"{path}-{name}")}')
            for name, sub in properties.items()
        ]
        return self._members(pairs, required, path)

    def _members(self, pairs: list[tuple[str, str]], required: set[str], path: str) -> str:
        # Required members in declaration order, then each optional member at most once, in order.
        must = [member for name, member in pairs if name in required]
        may = [member for name, member in pairs if name not in required]
        if not may:
            return '"{" sp ' + ' "," sp '.join(must) + ' "}"'
        if must:
            tail = " ".join(f'("," sp {member})?' for member in may)
            return '"{" sp ' + ' "," sp '.join(must) + f' {tail} "}}"'
        starts = []
        for i, member in enumerate(may):
            rest = " ".join(f'("," sp {later})?' for later in may[i + 1 :])
            starts.append(f"{member} {rest}".strip())
        options = self._rules.add(f"{self._prefix}{path}-members", " | ".join(starts))
        return f'"{{" sp {options}? "}}"'

    def _array(self, schema: JsonSchema, path: str) -> str:
        prefix_items = schema.get("prefixItems")
        if isinstance(prefix_items, list) and prefix_items:
            return self._tuple(prefix_items, schema.get("items", True), path)
        items = schema.get("items", True)
        item = self.expression(items, f"{path}-item")
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        if high is not None and int(high) == 0:
            return '"[" sp "]"'
        more = ""
        if high is None or int(high) > 1:
            upper = "" if high is None else str(int(high) - 1)
            more = f'("," sp {item}){{{max(low - 1, 0)},{upper}}}'
        if low == 0:
            return f'"[" sp ({item} {more})? "]"'
        return f'"[" sp {item} {more} "]"'

    def _tuple(self, prefix_items: Sequence[object], items: object, path: str) -> str:
        parts = [self.expression(sub, f"{path}-{i}") for i, sub in enumerate(prefix_items)]
        body = ' "," sp '.join(parts)
        if items is not False:
            body += f' ("," sp {self.expression(items, f"{path}-rest")})*'
        return f'"[" sp {body} "]"'

    def _ref(self, ref: str) -> str:
        if ref in self._refs:
            return self._refs[ref]
        target = _resolve_pointer(self._root, ref)
        name = self._rules.reserve(f"{self._prefix}-ref-{ref.rsplit('/', 1)[-1]}")
        self._refs[ref] = name
        self._rules.set(name, self.expression(target, f"-def-{ref.rsplit('/', 1)[-1]}"))
        return name


def _string(schema: JsonSchema) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMAT_BODIES:
        return rf'"\"" {_FORMAT_BODIES[fmt]} "\""'
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if low == 0 and high is None:
        return "j-string"
    return rf'"\"" j-char{{{low},{"" if high is None else int(high)}}} "\""'


def _numeric(schema: JsonSchema, kind: str) -> str:
    inclusive, exclusive = schema.get("minimum"), schema.get("exclusiveMinimum")
    bounds = [b for b in (inclusive, exclusive) if isinstance(b, int | float)]
    if not bounds or max(bounds) < 0:
        return "j-int" if kind == "integer" else "j-number"
    positive = (isinstance(inclusive, int | float) and inclusive > 0) or (
        isinstance(exclusive, int | float) and exclusive >= 0
    )
    if kind == "integer":
        return "j-posint" if positive else "j-uint"
    return "j-unumber"


def _implied_type(schema: JsonSchema) -> str | None:
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _merge_all_of(schema: JsonSchema) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[str] = list(merged.get("required") or [])
    for part in schema["allOf"]:
        if not isinstance(part, Mapping):
            raise SchemaNotSupported("allOf entries must be schemas")
        properties.update(part.get("properties") or {})
        required += [name for name in part.get("required") or [] if name not in required]
        merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _resolve_pointer(root: object, ref: str) -> object:
    if not ref.startswith("#"):
        raise SchemaNotSupported(f"only local $ref are supported, got {ref!r}")
    node = root
    for raw in filter(None, ref[1:].split("/")):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            raise SchemaNotSupported(f"$ref {ref!r} does not resolve")
        node = node[key]
    return node
