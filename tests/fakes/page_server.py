"""A small web server on a loopback port for URL-context tests: the pages a prompt names.

It counts every connection it accepts and records every request (path and Host header), so
a test can prove that a refused URL was never connected to. Raw asyncio HTTP/1.1, one
request per connection (`Connection: close`), so what arrives is exactly what was sent.

Paths: /article (HTML with a script and a style the model must not see), /notes.txt,
/big (2 MiB of text), /slow (headers, then a body that never comes), /doc.pdf, /paywall
(402), /missing (404), /gzip (a gzip-encoded page), /bomb (gzip of 64 MiB of zeros),
/redirect?to=URL (302 to URL).
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

ARTICLE_TITLE = "Comet Facts"
ARTICLE_FACT = "Halley's comet returns to the inner Solar System every 76 years."
ARTICLE = f"""<!doctype html>
<html><head><title>{ARTICLE_TITLE}</title>
<style>body {{ color: red }} .hidden-style-text {{ }}</style>
<script>var SECRET_SCRIPT = "never shown";</script></head>
<body><h1>Comets</h1><p>{ARTICLE_FACT}</p>
<p>Its last perihelion was in 1986.</p><noscript>enable scripts</noscript></body></html>
"""
NOTES = "Plain notes: the tail of a comet points away from the Sun."
BIG_SIZE = 2 * 1024 * 1024
SLOW_SECONDS = 30.0  # far longer than any test's fetch timeout


@dataclass
class PageServer:
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    requested: asyncio.Event = field(default_factory=asyncio.Event)  # set by every request
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    scheme: str = "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        """With `ssl_context`, the server speaks https."""
        self.scheme = "https" if ssl_context is not None else "http"
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=ssl_context)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):  # a /slow answer would otherwise linger
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *fields = head.decode("latin-1").split("\r\n")
            target = line.split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (f.partition(":") for f in fields if f)}
            self.requests.append((target, headers.get("host", "")))
            self.requested.set()
            await self._answer(urlsplit(target), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _answer(self, target: object, writer: asyncio.StreamWriter) -> None:
        path = getattr(target, "path", "")
        query = parse_qs(getattr(target, "query", ""))
        if path == "/article":
            _write(writer, 200, "text/html; charset=utf-8", ARTICLE.encode())
        elif path == "/notes.txt":
            _write(writer, 200, "text/plain", NOTES.encode())
        elif path == "/big":
            _write(writer, 200, "text/plain", b"comet " * (BIG_SIZE // 6))
        elif path == "/slow":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                         b"content-length: 100\r\n\r\npartial")
            await writer.drain()
            await asyncio.sleep(SLOW_SECONDS)
        elif path == "/doc.pdf":
            _write(writer, 200, "application/pdf", b"%PDF-1.4 comet")
        elif path == "/paywall":
            _write(writer, 402, "text/html", b"<p>subscribe</p>")
        elif path == "/gzip":
            _write(writer, 200, "text/html", gzip.compress(ARTICLE.encode()),
                   extra=b"content-encoding: gzip\r\n")
        elif path == "/bomb":
            _write(writer, 200, "text/plain", gzip.compress(b"\0" * (64 * 1024 * 1024)),
                   extra=b"content-encoding: gzip\r\n")
        elif path == "/redirect":
            location = query.get("to", ["/article"])[0].encode()
            _write(writer, 302, "text/plain", b"", extra=b"location: " + location + b"\r\n")
        else:
            _write(writer, 404, "text/plain", b"not found")
        await writer.drain()


def _write(writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes,
           extra: bytes = b"") -> None:
    writer.write(b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                 b"connection: close\r\n%s\r\n" % (status, content_type.encode(), len(body), extra)
                 + body)


class PageServerThread:
    """The server on an event loop of its own, for tests whose gateway is another process."""

    def __init__(self) -> None:
        self.server = PageServer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.aclose(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
