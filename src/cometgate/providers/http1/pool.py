"""The connections to one origin, and the permits that bound them."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Final

from cometgate.errors import UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.http1.connection import Connection

# Longer than most servers keep an idle connection (uvicorn 5 s, nginx 75 s) is harmless: a
# connection they closed is noticed and dropped. Shorter guards against middleboxes that drop
# idle flows silently, which would otherwise cost a first-byte timeout.
IDLE_EXPIRY: Final = 30.0

Origin = tuple[str, str, int]  # scheme, host, port


class Pool:
    """Connections to one origin. A permit is held by every request from `acquire` until its
    response is settled, so `in_use` never exceeds the limit; a new connection is opened only
    when no idle one is left, so idle + in use never exceeds it either."""

    def __init__(self, origin: Origin, limit: int, connect_timeout: float,
                 ssl_context: ssl.SSLContext | None, idle_expiry: float) -> None:
        self.origin = origin
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._idle_expiry = idle_expiry
        self._idle: list[Connection] = []  # most recently used last
        self._open: set[Connection] = set()
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Connection | None:
        """Takes a permit; returns a live idle connection, or None: open one."""
        if self._in_use < self._limit and not self._waiters:
            self._in_use += 1
        else:
            await self._wait_for_permit()
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable() and now - connection.idle_since < self._idle_expiry:
                return connection
            connection.abort()
        return None

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        scheme, host, port = self.origin
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(self), host, port, ssl=self._ssl_context,
                    server_hostname=host if self._ssl_context is not None else None)
        except TimeoutError:
            raise UpstreamTimeout(f"connecting to {scheme}://{host}:{port} took longer than "
                                  f"{self._connect_timeout:g}s") from None
        except OSError as exc:  # refused, unreachable, unresolvable, TLS handshake failed
            raise UpstreamUnavailable(
                f"cannot reach the upstream {scheme}://{host}:{port}: {type(exc).__name__}"
            ) from exc
        self._open.add(connection)
        return connection

    def release(self, connection: Connection | None) -> None:
        """Returns a permit, and with it a connection fit for another request (or None)."""
        if connection is not None:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.append(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the permit passes straight to the waiter
                return
        self._in_use -= 1

    def forget(self, connection: Connection) -> None:
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()

    async def _wait_for_permit(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(None)  # handed a permit while being cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
