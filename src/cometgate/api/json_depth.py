"""A bound on how deeply a request body's JSON nests, checked on the bytes before any parse.

The request codecs walk documents recursively (schemas, contents, tool arguments); a body
nested a thousand levels deep would exhaust Python's recursion limit inside them and surface
as a 500. No API we speak needs more than a few dozen levels, so deeper bodies are refused at
the edge with a 400 in the caller's dialect.

Every step runs in C (bytes methods, map, accumulate), in time linear in the body's size.
"""

from __future__ import annotations

import operator
from itertools import accumulate, repeat

MAX_JSON_DEPTH = 64

# Containers of both kinds become `[`/`]` (depth does not care which); all else is dropped.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if some container in `body` sits more than `limit` levels deep. A malformed body
    (unbalanced, an unterminated string) may pass: the parser refuses it."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few containers to nest that deep: most requests stop here
    brackets = _outside_strings(body).translate(_AS_SQUARE, _NOT_BRACKETS)
    if b"[" * (limit + 1) in brackets:
        return True
    # Between two closings come the openings of a run: the depth after each closing is the
    # running sum of (run length - 1), and the deepest point is the end of some run.
    runs = brackets.split(b"]")
    deepest: int = max(accumulate(map(operator.sub, map(len, runs), repeat(1)))) + 1
    return deepest > limit


def _outside_strings(body: bytes) -> bytes:
    """`body` without the insides of its strings, where brackets nest nothing. Once escaped
    backslashes and then escaped quotes are gone, every quote left opens or closes a string."""
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(body.split(b'"')[0::2])
