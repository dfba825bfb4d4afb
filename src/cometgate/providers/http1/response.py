"""A response as httptools parses it: headers, then body pieces queued for the consumer."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Final

import httptools

from cometgate.errors import UpstreamError

if TYPE_CHECKING:
    from cometgate.providers.http1.connection import Connection

BUFFER_LIMIT: Final = 256 * 1024
_RESUME_AT: Final = BUFFER_LIMIT // 2


class Http1Response:
    """A response whose body arrives piece by piece. `headers` has lowercased names (repeated
    fields joined with ", "). Settled exactly once, after the caller got it and its body is
    complete, failed or closed; only then does its permit go back to the pool, with the
    connection if `reusable`. `first_chunk_by` is the opener's, for its own timeouts."""

    __slots__ = ("_body", "_buffered", "_connection", "_error", "_waiter", "complete",
                 "first_chunk_by", "framed", "handed_over", "headers", "headers_ready",
                 "informational", "parser", "reusable", "settled", "status_code")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.parser: httptools.HttpResponseParser | None = None
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.headers_ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_chunk_by: float | None = None
        self.framed = False  # by Content-Length or chunked coding, not by the close
        self.informational = False
        self.reusable = False
        self.complete = False
        self.handed_over = False
        self.settled = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def buffered(self) -> int:
        """Bytes of body received and not yet taken by the consumer."""
        return self._buffered

    def read_nowait(self) -> bytes | None:
        """The oldest piece not yet taken (pieces are kept as the parser gave them: one per
        HTTP chunk or socket read); b"" once the body has ended; None if the next piece has
        to be waited for. Raises the failure once the buffered body is used up."""
        if self._body:
            chunk = self._body.popleft()
            self._buffered -= len(chunk)
            if self._buffered <= _RESUME_AT and not self.settled:
                self._connection.resume()
            return chunk
        if self.complete:
            return b""
        if self._error is not None:
            raise self._error
        return None

    async def next_chunk(self) -> bytes:
        """The next piece of body as soon as it arrives; b"" at the end."""
        while (chunk := self.read_nowait()) is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return chunk

    async def aclose(self) -> None:
        """Never suspends. A response not read to the end closes its connection."""
        if not self.settled:
            self.reusable = self.reusable and self.complete
            self.settle()

    # Parser callbacks: httptools calls them by name while it is fed.

    def on_message_begin(self) -> None:
        if self.complete:  # a second response to one request: the stream is out of step
            raise ValueError("unexpected data after the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        if key in ("content-length", "transfer-encoding"):
            self.framed = True
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.informational, self.headers, self.framed = True, {}, False
            return
        self.status_code = status
        # llhttp: HTTP/1.1 without `Connection: close`, and a body not framed by the close.
        self.reusable = self.parser.should_keep_alive()
        if status in (204, 304):
            self.framed = True
        self.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > BUFFER_LIMIT:
            self._connection.pause()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
        else:
            self.end()

    # State changes; the connection settles a handed-over response after each of them.

    def end(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: UpstreamError) -> None:
        self.reusable = False
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error)
        else:
            self._error = error
            self._wake()

    def hand_over(self) -> None:
        """The caller owns the response from here. A body already complete (a small answer
        in one packet) frees its connection at once."""
        self.handed_over = True
        if self.complete or self._error is not None:
            self.settle()

    def settle(self) -> None:
        if self.settled:
            return
        self.settled = True
        connection = self._connection
        connection.detach(self)
        self.parser = None  # breaks the parser ↔ response cycle
        fit = self.reusable and self.complete and connection.usable()
        if not fit:
            connection.abort()
        connection.pool.release(connection if fit else None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
