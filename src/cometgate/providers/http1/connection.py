"""One upstream socket as an asyncio.Protocol: it writes a request, feeds what comes back to
the response's parser, and tells the response when the socket goes away."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools

from cometgate.errors import FailureClass, UpstreamError, UpstreamUnavailable
from cometgate.providers.http1.response import Http1Response

if TYPE_CHECKING:
    from cometgate.providers.http1.pool import Pool


class ClosedUnanswered(UpstreamUnavailable):
    """The connection ended before a single byte of the response arrived."""


class Connection(asyncio.Protocol):
    """One socket. Carries at most one response at a time; between responses it sits idle
    in its pool, where any byte or close from the server makes it unusable."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._response: Http1Response | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._received = False
        self._reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not derive from asyncio.Transport, hence no check.
        self._transport = cast(asyncio.Transport, transport)

    async def exchange(self, payload: bytes) -> Http1Response:
        """Writes the request; returns once the headers are in. Fails with the connection
        closed (never pooled again) if anything goes wrong before that."""
        assert self._transport is not None and self._response is None
        response = Http1Response(self)
        self._response, self._received = response, False
        self._parser = httptools.HttpResponseParser(response)
        response.parser = self._parser
        self._transport.write(payload)
        try:
            await response.headers_ready
        except BaseException:
            self._response = self._parser = response.parser = None
            self.abort()
            raise
        response.hand_over()
        return response

    def data_received(self, data: bytes) -> None:
        response, parser = self._response, self._parser
        if response is None or parser is None:
            self.abort()  # bytes nobody asked for: this connection cannot be trusted again
            return
        self._received = True
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if response.complete:
                response.reusable = False  # something after a complete response
            else:
                self._response = self._parser = None
                self.abort()
                response.fail(_unreadable(exc, response.headers_ready.done()))
        if response.handed_over and (response.complete or response.failed):
            response.settle()

    def eof_received(self) -> bool | None:
        return False  # close our side too: a half-closed upstream connection is not reused

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        response, self._response = self._response, None
        if response is None or response.complete or response.failed:
            return
        if not response.headers_ready.done():
            response.fail(_lost_before_headers(exc) if self._received
                          else ClosedUnanswered(_unanswered(exc)))
        elif not response.framed:
            response.end()  # the body ran until the connection closed
        else:
            response.fail(_lost_mid_body(exc))
        if response.handed_over:
            response.settle()

    def pause(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def detach(self, response: Http1Response) -> None:
        if self._response is response:
            self._response = self._parser = None
        self.resume()

    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _unanswered(exc: Exception | None) -> str:
    reason = f" ({type(exc).__name__})" if exc else ""
    return f"the upstream closed the connection without answering{reason}"


def _lost_before_headers(exc: Exception | None) -> UpstreamUnavailable:
    reason = type(exc).__name__ if exc else "closed"
    return UpstreamUnavailable(f"the upstream broke off its response headers: {reason}")


def _lost_mid_body(exc: Exception | None) -> UpstreamError:
    reason = type(exc).__name__ if exc else "closed"
    return _transient(f"the upstream connection was lost mid-response: {reason}")


def _unreadable(exc: Exception, headers_done: bool) -> UpstreamError:
    detail = f"the upstream sent an unreadable response: {type(exc).__name__}: {exc}"
    return _transient(detail) if headers_done else UpstreamUnavailable(detail)


def _transient(detail: str) -> UpstreamError:
    return UpstreamError(detail, failure_class=FailureClass.TRANSIENT, http_status=503,
                         status="UNAVAILABLE")
