"""An incremental decoder for `text/event-stream` bodies received from upstreams.

It follows the WHATWG "server-sent events" parsing rules, because upstreams differ in the
bytes they send even when they agree on the meaning:

- a line ends at CRLF, LF or CR, and a CRLF may be split across two network chunks;
- a line starting with ":" is a comment (keep-alives: OpenRouter sends ": OPENROUTER PROCESSING");
- `field:value` drops one space after the colon; a line without a colon is a field with an
  empty value; unknown fields are ignored;
- several `data` lines join with "\\n"; a blank line dispatches the event, unless no data
  arrived, in which case nothing is dispatched and the event type resets;
- `id` sets the last event id, which persists across events (ignored if it contains NUL);
  `retry` takes digits only;
- a leading UTF-8 byte order mark is skipped, and a multi-byte character split across two
  chunks is decoded whole; invalid UTF-8 becomes U+FFFD, as the spec's decoder does;
- an event still incomplete at end of input is discarded, never dispatched.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEFrame:
    """One dispatched event. `event` is "message" when the stream named no type."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Bytes in, frames out; keeps whatever a chunk left unfinished for the next one."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text after the last complete line
        self._after_cr = False  # the last chunk ended with CR: a leading LF is its partner
        self._started = False  # the byte order mark can only come first
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        text = self._text.decode(chunk)
        return self._lines(text)

    def close(self) -> list[SSEFrame]:
        """End of input. A final unterminated line still counts as a line, but an event
        without its blank line is discarded, as the spec says."""
        frames = self._lines(self._text.decode(b"", final=True))
        if self._pending:
            frames.extend(self._line(self._pending))
            self._pending = ""
        return frames

    def _lines(self, text: str) -> list[SSEFrame]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
            self._after_cr = False
        if not text:
            return []
        self._after_cr = text.endswith("\r")
        # str.splitlines would also split at \v, \f, U+2028 …, which SSE does not.
        *lines, self._pending = _LINE_END.split(self._pending + text)
        frames: list[SSEFrame] = []
        for line in lines:
            frames.extend(self._line(line))
        return frames

    def _line(self, line: str) -> list[SSEFrame]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(name, value)
        return []

    def _field(self, name: str, value: str) -> None:
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> list[SSEFrame]:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return []
        retry, self._retry = self._retry, None
        frame = SSEFrame("\n".join(data), event or "message", self._last_id, retry)
        return [frame]


async def decode_sse(chunks: AsyncIterable[bytes]) -> AsyncGenerator[SSEFrame, None]:
    """Frames from a body that arrives in arbitrary byte chunks."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for frame in decoder.feed(chunk):
            yield frame
    for frame in decoder.close():
        yield frame
