"""A loopback HTTP/1.1 server whose every byte the test writes itself: each accepted connection
runs the test's handler, which reads requests with `read_request` and answers as it likes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


@dataclass
class Peer:
    """One accepted connection, as the server sees it."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[Request] = field(default_factory=list)

    async def read_request(self) -> Request | None:
        """The next request, or None if the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        headers = [(k, v.strip()) for k, _, v in (f.partition(":") for f in fields)]
        length = sum(int(v) for k, v in headers if k.lower() == "content-length")
        request = Request(line, headers, await self.reader.readexactly(length))
        self.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Closes with a TCP RST (SO_LINGER 0) instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[Peer], Awaitable[None]]


@dataclass
class RawUpstream:
    port: int
    scheme: str
    peers: list[Peer] = field(default_factory=list)

    def url(self, path: str = "/v1/x") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        return [r for peer in self.peers for r in peer.requests]


@asynccontextmanager
async def raw_upstream(
    handler: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[RawUpstream]:
    tasks: set[asyncio.Task[None]] = set()
    upstream = RawUpstream(0, "https" if ssl_context else "http")

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(len(upstream.peers), reader, writer)
        upstream.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(peer)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=ssl_context)
    upstream.port = server.sockets[0].getsockname()[1]
    try:
        yield upstream
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answer(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n"
    return (head + "".join(f"{line}\r\n" for line in extra) + "\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


async def keep_answering(peer: Peer) -> None:
    """Answers every request on the connection with its own request line."""
    while (request := await peer.read_request()) is not None:
        await peer.send(answer(request.line.encode()))
