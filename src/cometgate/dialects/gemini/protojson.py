"""A proto3-JSON reader driven by the field tables of `schema`, with Google's error messages.

`parse` returns a dict keyed by proto (snake_case) names whatever spelling the caller used;
free-form Struct/Value fields are returned untouched (their keys are user data). Bytes come
back as `bytes`, enums as their value name, int64 as `int`. Every problem in the document is
collected before one `InvalidRequest` is raised, as Google reports them all at once, joined
with newlines; its violations map the snake_case path ("" for the root) to the message.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Container
from typing import Any

import orjson

from cometgate.dialects.gemini.schema import (
    MESSAGE_TYPES,
    EnumType,
    FieldSpec,
    Kind,
    MessageType,
    message_type,
)
from cometgate.errors import InvalidRequest

Normalised = dict[str, Any]

_INT32_RANGE = (-(2**31), 2**31 - 1)
_INT64_RANGE = (-(2**63), 2**63 - 1)

# Enum members bound once: reading `Kind.X` goes through the Enum class machinery, costly
# when done for every field of every request.
_STRING = Kind.STRING
_BOOL = Kind.BOOL
_INT32 = Kind.INT32
_INT64 = Kind.INT64
_FLOAT = Kind.FLOAT
_DOUBLE = Kind.DOUBLE
_BYTES = Kind.BYTES
_MESSAGE = Kind.MESSAGE
_MESSAGE_MAP = Kind.MESSAGE_MAP
_VALUE = Kind.VALUE
_STRING_MAP = Kind.STRING_MAP
_INT_TEXT = re.compile(r"-?\d+")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_B64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


class _Invalid(Exception):
    """A scalar that does not fit its field; the caller renders Google's message."""


def render_json(value: object) -> str:
    """A JSON value the way Google quotes it inside error messages."""
    return orjson.dumps(value).decode()


def invalid_value_message(path: str, type_name: str, value: object) -> str:
    return f"Invalid value at '{path}' ({type_name}), {render_json(value)}"


def unknown_name_message(name: str, path: str, reason: str) -> str:
    where = f" at '{path}'" if path else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: {reason}'


def decode_base64(text: str) -> bytes:
    """Either alphabet (google-genai re-encodes with the URL-safe one), padding optional."""
    if not _B64_TEXT.fullmatch(text):
        raise ValueError("not base64")
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        raise ValueError("truncated base64")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


class _Reader:
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def message(self, mtype: MessageType, data: object, path: str) -> Normalised:
        if not isinstance(data, dict):
            self.report(
                path, invalid_value_message(path, f"type.googleapis.com/{mtype.full_name}", data)
            )
            return {}
        out: Normalised = {}
        by_key = mtype.by_key
        for key, value in data.items():
            spec = by_key.get(key)
            if spec is None:
                self.report(path, unknown_name_message(key, path, "Cannot find field."))
            elif spec.proto_name in out:
                self.report(
                    path,
                    unknown_name_message(
                        key, path, f"Field '{spec.proto_name}' is set more than once."
                    ),
                )
            elif value is None:  # proto3 JSON: null means "not set"
                continue
            elif spec.kind is _STRING and not spec.repeated and isinstance(value, str):
                out[spec.proto_name] = value  # the most common field, and valid: read inline
            else:
                self._field_into(out, spec, key, value, path)
        if mtype.oneof_groups and len(out) > 1:  # a group needs two set members to clash
            self._check_oneofs(mtype, data, out, path)
        return out

    def _field_into(
        self, out: Normalised, spec: FieldSpec, key: str, value: object, path: str
    ) -> None:
        name, kind = spec.proto_name, spec.kind
        if spec.repeated:
            # Google's front end takes a lone value where a list is expected.
            items = value if isinstance(value, list) else [value]
            if spec.scalar:
                out[name] = [self._scalar(spec, item, path, i) for i, item in enumerate(items)]
            elif kind is _MESSAGE:
                assert spec.message is not None
                mtype, child = MESSAGE_TYPES[spec.message], _child_path(path, name)
                out[name] = [
                    self.message(mtype, item, f"{child}[{i}]") for i, item in enumerate(items)
                ]
            else:
                child = _child_path(path, name)
                out[name] = [
                    self.single(spec, item, f"{child}[{i}]") for i, item in enumerate(items)
                ]
        elif isinstance(value, list) and kind is not _VALUE:
            self.report(
                path,
                unknown_name_message(key, path, "Proto field is not repeating, cannot start list."),
            )
        elif spec.scalar:
            out[name] = self._scalar(spec, value, path)
        elif kind is _MESSAGE:
            assert spec.message is not None
            out[name] = self.message(MESSAGE_TYPES[spec.message], value, _child_path(path, name))
        else:
            out[name] = self.single(spec, value, _child_path(path, name))

    def _check_oneofs(
        self, mtype: MessageType, data: dict[Any, Any], out: Normalised, path: str
    ) -> None:
        for group, members in mtype.oneof_groups:
            seen = [spec for spec in members if spec.proto_name in out]
            for extra in seen[1:]:
                key = next(k for k in data if mtype.by_key.get(k) is extra)
                self.report(
                    path,
                    unknown_name_message(
                        key, path, f"oneof field '{group}' is already set. Cannot set '{key}'"
                    ),
                )

    def single(self, spec: FieldSpec, value: object, path: str) -> Any:
        kind = spec.kind
        if kind is _MESSAGE:
            assert spec.message is not None
            return self.message(message_type(spec.message), value, path)
        if kind is _MESSAGE_MAP:
            return self._message_map(spec, value, path)
        if kind is _VALUE:
            return value
        if kind is _STRING_MAP:
            return self._string_map(value, path)
        return self._scalar_at(spec, value, path)

    def _scalar(self, spec: FieldSpec, value: object, parent: str, index: int = -1) -> Any:
        """A scalar field of the message at `parent` (item `index` of a list, if not -1); its
        path is only built for a problem, as valid values are the rule."""
        try:
            return _scalar_value(spec, value)
        except _Invalid:
            path = _child_path(parent, spec.proto_name)
            return self._scalar_at(spec, value, path if index < 0 else f"{path}[{index}]")

    def _scalar_at(self, spec: FieldSpec, value: object, path: str) -> Any:
        try:
            return _scalar_value(spec, value)
        except _Invalid:
            self.report(path, invalid_value_message(path, _type_name(spec), value))
            return None

    def _message_map(self, spec: FieldSpec, value: object, path: str) -> Normalised:
        assert spec.message is not None
        if not isinstance(value, dict):
            self.report(path, invalid_value_message(path, "map", value))
            return {}
        mtype = message_type(spec.message)
        # Google names map entries by position: "properties[3].value".
        return {
            key: self.message(mtype, item, f"{path}[{i}].value")
            for i, (key, item) in enumerate(value.items())
        }

    def _string_map(self, value: object, path: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.report(path, invalid_value_message(path, "map", value))
            return {}
        for i, item in enumerate(value.values()):
            if not isinstance(item, str):
                self.report(
                    f"{path}[{i}].value",
                    invalid_value_message(f"{path}[{i}].value", Kind.STRING.value, item),
                )
        return {k: v for k, v in value.items() if isinstance(v, str)}


def _child_path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _type_name(spec: FieldSpec) -> str:
    if spec.enum is not None:
        return f"type.googleapis.com/{spec.enum.full_name}"
    return spec.kind.value


def _scalar_value(spec: FieldSpec, value: object) -> Any:
    """`value` read as the scalar field `spec`; raises _Invalid if it does not fit."""
    kind = spec.kind
    if kind is _STRING:
        if not isinstance(value, str):
            raise _Invalid
        return value
    if kind is _BOOL:
        if not isinstance(value, bool):
            raise _Invalid
        return value
    if kind is _INT32 or kind is _INT64:
        return _integer(kind, value)
    if kind is _FLOAT or kind is _DOUBLE:
        return _floating(value)
    if kind is _BYTES:
        return _bytes(value)
    assert spec.enum is not None
    return _enum_value(spec.enum, value)


def _integer(kind: Kind, value: object) -> int:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, float) and value.is_integer():
        number = int(value)  # google-genai sends "topK": 20.0
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value):
        number = int(value)  # proto3 JSON: 64-bit integers travel as strings
    else:
        raise _Invalid
    low, high = _INT32_RANGE if kind is _INT32 else _INT64_RANGE
    if not low <= number <= high:
        raise _Invalid
    return number


def _floating(value: object) -> float:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        try:
            return float(value)
        except ValueError:
            raise _Invalid from None
    raise _Invalid


def _bytes(value: object) -> bytes:
    if not isinstance(value, str):
        raise _Invalid
    try:
        return decode_base64(value)
    except ValueError:
        raise _Invalid from None


def _enum_value(enum: EnumType, value: object) -> str:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int):
        if 0 <= value < len(enum.values):
            return enum.values[value]
        raise _Invalid
    if isinstance(value, str):
        wanted = value.upper() if enum.case_insensitive else value
        if wanted in enum.values:
            return wanted
    raise _Invalid


def parse(mtype: MessageType, data: object) -> Normalised:
    """Read `data` (already JSON-decoded) as a `mtype` message; raise on any problem."""
    reader = _Reader()
    result = reader.message(mtype, data, "")
    if reader.problems:
        raise problems_error(reader.problems)
    return result


def problems_error(problems: list[tuple[str, str]]) -> InvalidRequest:
    violations: dict[str, str] = {}
    for path, message in problems:
        violations[path] = f"{violations[path]}\n{message}" if path in violations else message
    return InvalidRequest("\n".join(message for _, message in problems), violations=violations)


def to_json(
    mtype: MessageType, normalised: Normalised, only: Container[str] | None = None
) -> dict[str, Any]:
    """Render a normalised message back to Google's canonical JSON (json names, std base64).

    With `only`, the result holds just the fields whose JSON names it contains, each exactly as
    the full rendering has it; the other fields are not rendered at all.
    """
    out: dict[str, Any] = {}
    for spec in mtype.fields:
        if spec.proto_name in normalised and (only is None or spec.json_name in only):
            value = normalised[spec.proto_name]
            out[spec.json_name] = (
                [_render_single(spec, item) for item in value]
                if spec.repeated
                else _render_single(spec, value)
            )
    return out


def _render_single(spec: FieldSpec, value: Any) -> Any:
    if spec.kind is _MESSAGE:
        assert spec.message is not None
        return to_json(message_type(spec.message), value)
    if spec.kind is _MESSAGE_MAP:
        assert spec.message is not None
        mtype = message_type(spec.message)
        return {key: to_json(mtype, item) for key, item in value.items()}
    if spec.kind is _BYTES:
        return base64.b64encode(value).decode()
    if spec.kind is _INT64:
        return str(value)  # proto3 JSON renders 64-bit integers as strings
    return value
