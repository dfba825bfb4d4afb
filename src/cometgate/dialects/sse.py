"""Server-sent-events framing shared by the dialects that stream over SSE."""

from __future__ import annotations

_PREFIX = b"data: "
_END = b"\r\n\r\n"


def sse_event(payload: bytes) -> bytes:
    """One event: exactly `data: <payload>` and a blank line, CRLF-terminated.

    The payload must be single-line JSON: the strictest client parser (a legacy Gemini JS SDK)
    reads one `data: ` line per event and fails on anything else.
    """
    if b"\n" in payload or b"\r" in payload:
        raise ValueError("an SSE payload must be a single line")
    return _PREFIX + payload + _END
