"""One string field of a JSON document replaced in place, every other byte kept as it was.

The pass-through promises the upstream's (and the caller's) bytes unchanged but for the model
name; decoding and re-encoding a whole body would reorder nothing but could still change
spacing, escapes and number spellings, and it costs a full encode. Here only strings and
brackets are scanned (strings are skipped in C by the regular expression), the object keys
leading to the field are tracked, and the one string value found at the path is replaced.

The path is exact: a key of the same name deeper in the document (a tool's input that has a
"model" argument) is never the one replaced.

Scanning costs a Python step per string, which is nothing for an answer or a stream event but
adds up over a large request (tool schemas, a long history) whose model key comes last. A
request's top-level key, whose current value is known, is therefore found by searching for
the key in C and checking the one candidate with a parse (`with_top_level_string`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

# A whole JSON string, with the colon that makes it an object key; or a bracket.
_TOKEN = re.compile(rb'("[^"\\]*+(?:\\.[^"\\]*+)*+")(\s*+:)?|[{}\[\]]', re.DOTALL)
_OPENING = frozenset((b"{", b"["))
_BACKSLASH = ord("\\")


def replaced_string(body: bytes, path: tuple[str, ...], value: str) -> bytes | None:
    """`body` with the string at `path` (object keys from the top-level object down) set to
    `value`; None when no string value is there (no such key, another type, not JSON)."""
    if not path:
        return None
    wanted = [None, *(_key(name) for name in path[:-1])]  # the containers' keys, top down
    last = _key(path[-1])
    depth = len(wanted)
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


def with_top_level_string(
    body: bytes, document: Mapping[str, Any], key: str, value: str
) -> bytes:
    """`body` (whose parse is `document`) with its top-level `key` set to the string `value`:
    in place when that key holds a string, else by encoding the document again.

    A match of `"key":"…"` always spans one whole string value (JSON escapes every quote
    inside a string, so `key"` followed by a colon can only close an object key); it is the
    top-level one when it comes before any nested container, or when replacing it changes
    the top-level value, which a parse of the result tells."""
    if document.get(key) == value:
        return body
    pattern = re.compile(re.escape(_key(key)) + rb'\s*+:\s*+("[^"\\]*+(?:\\.[^"\\]*+)*+")')
    for found in pattern.finditer(body):
        start, end = found.span(1)
        replaced = body[:start] + orjson.dumps(value) + body[end:]
        opening = found.start()
        escaped = opening > 0 and body[opening - 1] == _BACKSLASH  # a key ending in `\"key`
        if not escaped and body.count(b"{", 0, opening) == 1 and b"[" not in body[:opening]:
            return replaced  # nothing nested opened before it: it is at the top
        if _top_level(replaced, key) == value:
            return replaced
    return orjson.dumps({**document, key: value})


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
