"""The size bounds on what an upstream sends back (see Timeouts.max_answer_bytes and
max_event_bytes), checked chunk by chunk as the bytes arrive, so nothing oversized is ever
held whole."""

from __future__ import annotations

import re

from cometgate.errors import FailureClass, UpstreamError

# A blank line ends an SSE event; lines end with CRLF, LF or CR.
_EVENT_END = re.compile(rb"\r?\n\r?\n|\r\r")
_ENDS_FROM_BEHIND = ((b"\n\r\n", 3), (b"\n\n", 2), (b"\r\r", 2))
_CARRY = 3  # bytes of the previous chunk kept: the longest end less one


def answer_too_large(limit: int) -> UpstreamError:
    return _bad_gateway(f"The upstream's answer exceeded {limit} bytes.")


def event_too_large(limit: int) -> UpstreamError:
    return _bad_gateway(f"One event of the upstream's stream exceeded {limit} bytes.")


def _bad_gateway(message: str) -> UpstreamError:
    # Not worth retrying on the same target: it would send the same thing again.
    return UpstreamError(message, failure_class=FailureClass.UNKNOWN, http_status=502,
                         status="UNAVAILABLE")


class EventBound:
    """Counts the bytes of the stream's events as chunks arrive; an event may span chunks and
    a chunk may hold many events. An event's size excludes the blank line that ends it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = 0  # bytes of the unfinished event
        self._carry = b""  # the previous chunk's tail: an end may straddle two chunks

    def feed(self, chunk: bytes) -> None:
        """Raises the 502 once one event is longer than the limit."""
        window = self._carry + chunk
        start = len(self._carry) - self._pending  # where the unfinished event began
        if self._pending + len(chunk) > self.limit:
            # Only now can an event be too long: look at each one this chunk ends.
            for end in _EVENT_END.finditer(window, max(start, 0)):
                if end.start() - start > self.limit:
                    raise event_too_large(self.limit)
                start = end.end()
        else:
            start = max([start, *(window.rfind(end) + length
                                  for end, length in _ENDS_FROM_BEHIND if end in window)])
        self._pending = len(window) - start
        self._carry = window[-_CARRY:]
        if self._pending > self.limit:
            raise event_too_large(self.limit)
