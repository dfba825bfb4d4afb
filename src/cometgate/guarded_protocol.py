"""The HTTP/1.1 connection as uvicorn's httptools protocol, with the bounds it lacks.

llhttp (under httptools) has no limit on the size or the number of header fields and uvicorn
puts no clock on a request's head: one header line that never ends is buffered without end,
and a connection that trickles a byte a second (slowloris) is kept for ever. This protocol:

- counts the bytes of a request's head as they arrive, before the parser buffers them, and
  the header fields as the parser yields them: beyond `max_header_bytes` or `max_headers`
  the request is answered 431 and the connection closed;
- gives a connection `header_timeout` seconds from its first byte (or from its opening) to
  finish a request's head, else 408 and close — while an earlier pipelined request is
  still being answered, the clock waits for it;
- keeps a half-closed connection (the client shut its sending side after pipelining its
  requests) open until every request it sent has been answered.

The time to read a body is bounded where the body is read (api/body.py), where the caller's
dialect is known; a request answered before its body was read (a 413, a route that takes no
body) has its connection closed after the answer, so the rest cannot trickle in for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What a refusal's body is made from: (status, message, request target, headers seen so far) → the
# content type and the body, in the caller's dialect as far as it can be told.
RefusalBody = Callable[[int, str, str, list[tuple[bytes, bytes]]], tuple[str, bytes]]

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# After a refusal the connection half-closes and swallows what the client is still sending
# for this long: closing at once with unread bytes would make the kernel answer with a reset,
# which can destroy the refusal before the client reads it.
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout: float


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: HeadLimits
    refusal_body: RefusalBody

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_fields = 0
        self._in_head = True  # a fresh connection owes a request head
        self._refused = False
        self._peer_done = False
        self._pipelining = False  # the client sent a request before its previous answer
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            # Counted before the parser sees the bytes: llhttp would buffer an endless line.
            self._head_bytes += len(data)
            # The chunk may carry a body after the head; on_headers_complete judges exactly.
            if self._head_bytes > self.limits.max_header_bytes + len(data):
                self._refuse(431, self._too_large_message())
                return
        super().data_received(data)

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio.Protocol's
        """True keeps the sending side open: the requests already read still get answers.

        A shut sending side and a closed socket look the same here. A client that pipelined
        its requests and then shut its side is waiting for the answers; one that sent a single
        request and closed has hung up, and the request in flight is abandoned (the
        disconnect cancels its upstream call), as proxies treat a client's close."""
        self._peer_done = True
        cycle = self.cycle
        body_cut = cycle is not None and cycle.more_body and not cycle.response_complete
        if self._pipelining and self._answering() and not body_cut:
            return True
        return None  # the transport closes: a request cut short is a disconnect

    # Once refused, the rest of the chunk being parsed is ignored: every callback returns.

    def on_message_begin(self) -> None:
        if self._refused:
            return
        if self._answering():
            self._pipelining = True
        super().on_message_begin()
        self._in_head = True
        self._head_fields = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_fields += 1
        if self._head_fields > self.limits.max_headers:
            self._refuse(431, f"Request has more than {self.limits.max_headers} header fields.")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        head_size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if head_size > self.limits.max_header_bytes:
            self._refuse(431, self._too_large_message())
            return
        self._in_head = False
        self._head_bytes = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        cycle = self.cycle  # the latest request: a pipelined one may follow the answered one
        answered = cycle is not None and cycle.response_complete
        if answered and cycle.more_body and not self.transport.is_closing():
            # Answered before its body was read (a 413, a route that takes none): the rest of
            # the body would keep the connection as long as the client cares to trickle it.
            self._refused = True
            self._disarm_head_timer()
            self._linger_and_close()
            return
        super().on_response_complete()
        if self._peer_done and not self._answering() and not self.transport.is_closing():
            self.transport.close()

    def _answering(self) -> bool:
        busy = self.cycle is not None and not self.cycle.response_complete
        return busy or bool(self.pipeline)

    def _too_large_message(self) -> str:
        return f"Request header fields exceed {self.limits.max_header_bytes} bytes."

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._answering():
            # The next head may wait while we answer the one before it.
            self._arm_head_timer()
            return
        if not self._in_head:  # between keep-alive requests uvicorn's own timer governs
            return
        self._refuse(408, "Timed out waiting for the request header fields.")

    def _refuse(self, status: int, message: str) -> None:
        """Answers with `status` and closes, unless a response is already under way (then
        only closes: a second status line would corrupt it)."""
        self._refused = True
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        if self._answering():
            self.transport.close()
            return
        target = getattr(self, "url", b"/").decode("latin-1")
        headers = list(self.headers) if self.headers is not None else []
        content_type, body = self.refusal_body(status, message, target, headers)
        self.transport.write(b"".join([
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: ", content_type.encode("latin-1"), b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]))
        self._linger_and_close()

    def _linger_and_close(self) -> None:
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def guarded_protocol(limits: HeadLimits, refusal_body: RefusalBody) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""

    class Configured(GuardedHttpProtocol):
        pass

    Configured.limits = limits
    Configured.refusal_body = staticmethod(refusal_body)  # not bound as a method
    return Configured
