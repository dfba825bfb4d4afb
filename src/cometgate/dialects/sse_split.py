"""Server-sent events cut apart as they arrive, byte-exact: for relaying an upstream's stream
event by event (same-dialect pass-through) while reading each event only as far as accounting
needs. Decoding events into fields for translation is `sse_decode`'s job."""

from __future__ import annotations

import re
from typing import Any

import orjson

_LINE_END = re.compile(rb"\r\n|\r|\n")
# Two line ends in a row end an event (WHATWG SSE). Atomic groups keep a CRLF from being
# read as CR followed by LF, which would end an event after a single line.
_EVENT_END = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


def event_payload(event: bytes) -> bytes:
    """The data of one SSE event, its `data` lines joined by LF; when it has none (a raw JSON
    object written outside SSE framing), the event's bytes without surrounding whitespace."""
    lines = [line for line in _LINE_END.split(event) if line.startswith(b"data:")]
    if not lines:
        return event.strip()
    return b"\n".join(line[6:] if line.startswith(b"data: ") else line[5:] for line in lines)


def event_object(event: bytes) -> dict[str, Any] | None:
    """The JSON object one SSE event carries, or None when its data is not one: what a relay
    reads for accounting, and leaves alone when it cannot."""
    try:
        document = orjson.loads(event_payload(event))
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


class SSEEventSplitter:
    """Cuts an SSE body into events at their blank lines, keeping every byte: each event is
    returned exactly as received, terminator included, and the events joined are the body."""

    def __init__(self) -> None:
        self._pending = b""
        self._scan_from = 0  # no event end starts before this offset in _pending

    def feed(self, chunk: bytes) -> list[bytes]:
        self._pending += chunk
        events: list[bytes] = []
        start = 0
        while (end := _EVENT_END.search(self._pending, max(start, self._scan_from))):
            # A CR last in the buffer may be the first half of a CRLF still in flight.
            if end.end() == len(self._pending) and self._pending.endswith(b"\r"):
                break
            events.append(self._pending[start:end.end()])
            start = end.end()
        self._pending = self._pending[start:]
        # An event end is at most 4 bytes (CRLF CRLF): the last 3 may begin one.
        self._scan_from = max(0, len(self._pending) - 3)
        return events

    def close(self) -> bytes:
        """Whatever followed the last complete event (a final event without its blank line,
        or a raw JSON error appended outside SSE framing)."""
        rest, self._pending, self._scan_from = self._pending, b"", 0
        return rest
