"""The client: where a URL's connections come from, and what a request looks like on the wire."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, urlsplit

from cometgate.providers.http1.connection import ClosedUnanswered
from cometgate.providers.http1.pool import IDLE_EXPIRY, Origin, Pool
from cometgate.providers.http1.response import Http1Response

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Managed by the client itself; a caller's copy would make the framing ambiguous.
_MANAGED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "expect",
                                     "connection"})
# Everything printable in ASCII but the space stays as written; the rest is percent-encoded.
_TARGET_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F))
_ROUTE_CACHE_SIZE: Final = 512


class Http1Client:
    """POSTs over pooled keep-alive connections. `ssl_context` is for https origins (default:
    the system's trust store). Only the event loop that first uses the client may use it."""

    def __init__(
        self, *, connect_timeout: float, max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None, idle_expiry: float = IDLE_EXPIRY,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._idle_expiry = idle_expiry
        self._pools: dict[Origin, Pool] = {}
        # url → (origin, request target, Host value); bounded, as model names vary.
        self._routes: dict[str, tuple[Origin, str, str]] = {}
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Http1Response:
        """Sends the request and waits for the response headers. The response owns its
        connection until its body has been read to the end or it is closed. Header names
        are sent as given (lowercase, as HTTP/2 would have them, is what callers use)."""
        if self._closed:
            raise RuntimeError("this HTTP client is closed")
        origin, target, host = self._route(url)
        pool = self._pools.get(origin) or self._new_pool(origin)
        payload = _request_head(target, host, headers, len(body)) + body
        pooled = await pool.acquire()
        try:
            if pooled is not None:
                try:
                    return await pooled.exchange(payload)
                except ClosedUnanswered:
                    # Resending a POST is safe here. The connection sat idle in the pool and
                    # the server closed it without one byte of an answer: the keep-alive race,
                    # its idle timer fired while our request was on the way. A server closing
                    # an idle connection does not read what arrives after it decided to close,
                    # so no application saw the request and it cannot run twice. (RFC 9112
                    # §9.3.1 allows resending a POST only with such a sign that it was never
                    # applied.) A server that crashed on receipt looks the same; that rare case
                    # costs one repeated generation, where not retrying would fail a request
                    # every time the race is lost. Once, on a fresh connection, and never
                    # after a byte came back; a fresh connection failing so is an error.
                    pass
            fresh = await pool.connect()
            return await fresh.exchange(payload)
        except BaseException:
            pool.release(None)
            raise

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Closes every connection, idle or in use; responses still being read fail."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _new_pool(self, origin: Origin) -> Pool:
        context = None
        if origin[0] == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
                self._ssl_context.set_alpn_protocols(["http/1.1"])
            context = self._ssl_context
        pool = Pool(origin, self._max_connections, self._connect_timeout, context,
                    self._idle_expiry)
        self._pools[origin] = pool
        return pool

    def _route(self, url: str) -> tuple[Origin, str, str]:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            route = self._routes[url] = _parse_url(url)
        return route


def _parse_url(url: str) -> tuple[Origin, str, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host, port = parts.hostname, parts.port or _DEFAULT_PORTS[scheme]
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not target.isascii() or not target.isprintable() or " " in target:
        target = quote(target, safe=_TARGET_SAFE)
    shown = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return (scheme, host, port), target, shown


def _request_head(target: str, host: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"POST {target} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} contains a line break")
        if name.lower() not in _MANAGED_HEADERS:
            lines.append(f"{name}: {value}\r\n")
    # Without Accept-Encoding any coding would be acceptable (RFC 9110 §12.5.3); the body is
    # forwarded and parsed as it comes, so ask for it as it is.
    if "accept-encoding" not in headers:
        lines.append("accept-encoding: identity\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")
