"""Real loopback servers for the contract suite: the three fake upstreams served by uvicorn on
127.0.0.1 free ports, a fault layer in front of each, and a server that resets every connection.

Faults are injected at the HTTP layer, so they look to the gateway exactly like a misbehaving
upstream: held response headers (a first-byte timeout), a connection reset before the first
byte, and a connection broken after the first few body chunks (uvicorn closes the socket when an
app fails after the response started, so the client sees an incomplete chunked body).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Fault:
    """One request's misbehaviour. `hold_seconds`: wait before answering at all;
    `reset_after_chunks`: break the connection after this many non-empty body chunks;
    `then_answer`: after the hold, let the fake answer (False: a 504 from this layer, without
    consuming the fake's next scripted reply)."""

    hold_seconds: float = 0.0
    then_answer: bool = True
    reset_after_chunks: int | None = None
    hold_until_gone: bool = False  # answer nothing, until the client closes the connection


@dataclass
class FaultLayer:
    """An ASGI layer in front of a fake: each request takes the next scripted fault (none when
    the script is empty), so a test scripts faults and replies side by side."""

    app: ASGIApp
    faults: list[Fault] = field(default_factory=list)
    held: int = 0  # requests that were held (and possibly abandoned by the gateway)
    credentials: list[str] = field(default_factory=list)  # each request's key, in order
    # Requests whose client (the gateway) closed the connection before the answer ended.
    gone: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.credentials.append(_credential(scope))
        fault = self.faults.pop(0) if self.faults else Fault()
        receive, send = self._watched(receive, send)
        if fault.hold_until_gone:
            await _until_disconnected(receive)
            return
        if fault.hold_seconds:
            self.held += 1
            await asyncio.sleep(fault.hold_seconds)
            if not fault.then_answer:
                await send({"type": "http.response.start", "status": 504, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        if fault.reset_after_chunks is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _breaking(send, fault.reset_after_chunks))


    def _watched(self, receive: Receive, send: Send) -> tuple[Receive, Send]:
        """receive and send that count a disconnect arriving before the answer ended (the
        server delivers `http.disconnect` through receive; the fakes' streams listen for it)."""
        ended = False

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not ended:
                self.gone += 1
            return message

        async def watched_send(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.body" and not message.get("more_body"):
                ended = True
            await send(message)

        return watched_receive, watched_send


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _credential(scope: Scope) -> str:
    """The key as each dialect carries it: Bearer (OpenAI), x-api-key, x-goog-api-key."""
    headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    return bearer or headers.get("x-api-key") or headers.get("x-goog-api-key") or ""


def _breaking(send: Send, chunks: int) -> Send:
    sent = 0

    async def breaking_send(message: Message) -> None:
        nonlocal sent
        if message["type"] == "http.response.body" and message.get("body"):
            if sent == chunks:
                raise ConnectionResetError("the fake upstream breaks the connection")
            sent += 1
        await send(message)

    return breaking_send


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def served(*apps: Any) -> AsyncIterator[list[str]]:
    """Serves each app on its own free loopback port in the running loop (started and stopped
    together); yields their base URLs."""
    sockets = [_bound_socket() for _ in apps]
    servers = [uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="critical",
                                             http="h11", ws="none", timeout_graceful_shutdown=1))
               for app in apps]
    tasks = [asyncio.create_task(server.serve(sockets=[sock]))
             for server, sock in zip(servers, sockets, strict=True)]
    try:
        for _ in range(2000):  # uvicorn offers no event to wait on; bounded to ~10 s
            if all(server.started for server in servers):
                break
            await asyncio.sleep(0.002)
        assert all(server.started for server in servers), "uvicorn did not start"
        yield [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        for sock in sockets:
            sock.close()


@asynccontextmanager
async def resetting() -> AsyncIterator[str]:
    """A server that reads each request's head and answers with a TCP reset (SO_LINGER 0):
    the upstream dies before the first byte. Yields its base URL; `.count` is not needed since
    the gateway's view (a failover, or a 503) is what the tests assert."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        raw = writer.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
