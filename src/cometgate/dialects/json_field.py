"""One string field of a JSON document replaced in place, every other byte kept as it was.

The pass-through promises the upstream's (and the caller's) bytes unchanged but for the model
name; decoding and re-encoding a whole body would keep the values but could still change
spacing, escapes and number spellings, and it costs a full encode.

The path is exact: a key of the same name deeper in the document (a tool's input that has a
"model" argument), inside a string, or at the end of another key is never the one replaced.
Three ways to find it, cheapest first:

- search in C for `"name": "<string>"`. A match is always one whole object member: JSON
  escapes every quote inside a string, so `name"` followed by a colon can only end an object
  key, and what follows the colon is that member's whole string value. The first match is
  at the path when the bytes before it open exactly the path's objects — as many `{` as the
  path is long, each but the first right after the member name the path gives, and no `[`
  or `}` at all (a brace inside a string only makes this check fail, never pass wrongly);
- for a top-level field, the last match is at the path when the bytes after it hold no
  bracket but the one `}` that ends the document (Gemini puts modelVersion last);
- otherwise scan strings and brackets (strings skipped in C), tracking the keys that lead
  to each open object: a Python step per string, fine for an answer or an event.

A request's top-level key, whose current value is known, has a fourth way when it comes
after nested values (an agent's tool schemas and history): each match is tried and checked
by one parse (`with_top_level_string`), cheaper than scanning a large body string by string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# A whole JSON string, with the colon that makes it an object key; or a bracket.
_TOKEN = re.compile(rb"(" + _STRING + rb")(\s*+:)?|[{}\[\]]", re.DOTALL)
_OPENING = frozenset((b"{", b"["))
_SPACE = b" \t\r\n"
_BACKSLASH = ord("\\")


@dataclass(frozen=True, slots=True)
class JsonPath:
    """Object keys from the top-level object down, with their JSON spellings and the pattern
    of the last one's member compiled once: a user holds its paths as module constants, so
    nothing is compiled (or cached) per call."""

    names: tuple[str, ...]
    keys: tuple[bytes, ...] = field(init=False, repr=False)
    member: re.Pattern[bytes] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("a JSON path names at least one key")
        object.__setattr__(self, "keys", tuple(_key(name) for name in self.names))
        object.__setattr__(self, "member", re.compile(
            re.escape(self.keys[-1]) + rb"\s*+:\s*+(" + _STRING + rb")", re.DOTALL))


def replaced_string(body: bytes, path: JsonPath, value: str) -> bytes | None:
    """`body` with the string at `path` set to `value`; None when no string value is there
    (no such key, another type, not JSON)."""
    found = _found_quickly(body, path.keys, path.member)
    if found is not None:
        return _spliced(body, found, value)
    return _scanned(body, path.keys, value)


def with_top_level_string(
    body: bytes, document: Mapping[str, Any], path: JsonPath, value: str
) -> bytes:
    """`body` (whose parse is `document`) with its top-level key `path` set to the string
    `value`: in place when that key holds a string, else by encoding the document again."""
    if len(path.names) != 1:
        raise ValueError(f"{path.names} is not a top-level key")
    key = path.names[0]
    if document.get(key) == value:
        return body
    found = _found_quickly(body, path.keys, path.member)
    if found is not None:
        return _spliced(body, found, value)
    for found in path.member.finditer(body):
        replaced = _spliced(body, found, value)
        if _top_level(replaced, key) == value:
            return replaced
    return orjson.dumps({**document, key: value})


def _found_quickly(
    body: bytes, keys: tuple[bytes, ...], pattern: re.Pattern[bytes]
) -> re.Match[bytes] | None:
    """The member at the path when the first match is opened by the path, or, for a
    top-level field, the last match closes the document; None when neither tells."""
    first = pattern.search(body)
    if first is None:
        return None
    if _opened_by_path(body, first.start(), keys):
        return first
    if len(keys) > 1:
        return None
    last = first
    for later in pattern.finditer(body, first.end()):
        last = later
    return last if _closes_document(body, last) else None


def _spliced(body: bytes, found: re.Match[bytes], value: str) -> bytes:
    start, end = found.span(1)
    return body[:start] + orjson.dumps(value) + body[end:]


def _escaped(body: bytes, quote: int) -> bool:
    """Whether the quote at `quote` is escaped: then the key only ends in the name."""
    return quote > 0 and body[quote - 1] == _BACKSLASH


def _opened_by_path(body: bytes, member: int, keys: tuple[bytes, ...]) -> bool:
    if _escaped(body, member) or body.find(b"[", 0, member) >= 0:
        return False
    if body.find(b"}", 0, member) >= 0 or body.count(b"{", 0, member) != len(keys):
        return False
    brace = body.find(b"{")
    for key in keys[:-1]:
        brace = body.find(b"{", brace + 1)
        if not _value_of(body, brace, key):
            return False
    return True


def _value_of(body: bytes, brace: int, key: bytes) -> bool:
    """Whether the `{` at `brace` opens the value of the member named `key`."""
    before = body[:brace].rstrip(_SPACE)
    if not before.endswith(b":"):
        return False
    before = before[:-1].rstrip(_SPACE)
    return before.endswith(key) and not _escaped(before, len(before) - len(key))


def _closes_document(body: bytes, found: re.Match[bytes]) -> bool:
    if _escaped(body, found.start()):
        return False
    after = body[found.end():]
    return (after.count(b"}") == 1 and after.rstrip(_SPACE).endswith(b"}")
            and b"{" not in after and b"[" not in after and b"]" not in after)


def _scanned(body: bytes, keys: tuple[bytes, ...], value: str) -> bytes | None:
    wanted = [None, *keys[:-1]]  # for each open object on the path, the key that holds it
    last, depth = keys[-1], len(keys)
    open_keys: list[bytes | None] = []  # for each open container, the key that holds it
    key: bytes | None = None  # the key whose value comes next
    for token in _TOKEN.finditer(body):
        string = token.group(1)
        if string is None:
            if token.group() in _OPENING:
                open_keys.append(key)
            elif len(open_keys) > 1:
                open_keys.pop()
            else:
                return None  # the top-level value ended without the field
            key = None
        elif token.group(2) is not None:
            key = _canonical(string)
        else:
            if key == last and len(open_keys) == depth and open_keys == wanted:
                start, end = token.span(1)
                return body[:start] + orjson.dumps(value) + body[end:]
            key = None
    return None


def _top_level(body: bytes, key: str) -> object:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document.get(key) if isinstance(document, dict) else None


def _key(name: str) -> bytes:
    return orjson.dumps(name)


def _canonical(string: bytes) -> bytes:
    """A key as orjson would write it, so an escaped spelling still matches."""
    if b"\\" not in string:
        return string
    try:
        return orjson.dumps(orjson.loads(string))
    except orjson.JSONDecodeError:
        return string
