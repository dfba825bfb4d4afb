"""Fixed-rate (open-loop) HTTP/1.1 client over raw asyncio streams.

Requests leave on a fixed timetable whatever the previous ones are doing, so a slow answer
cannot delay the next request (a closed-loop client would hide queueing). Latency is measured
from the moment the request bytes are written to the moment the last byte arrives; for a
stream, the arrival time of every server-sent event (one blank-line-terminated block) is kept,
so first-event time and inter-event gaps can be compared with the mock's own.

The client is deliberately minimal (no httpx): its own cost and jitter add to every figure,
direct and through a gateway alike, and must stay small next to the overhead being measured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    """One scenario on one system: where to POST what."""

    host: str
    port: int
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def request_bytes(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"host: {self.host}:{self.port}",
                 "content-type: application/json", f"content-length: {len(self.body)}",
                 *(f"{name}: {value}" for name, value in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(slots=True)
class Sample:
    """One request. Times are seconds after the request was written."""

    status: int = 0
    latency: float = 0.0
    events: list[float] = field(default_factory=list)  # arrival of each SSE event
    body: bytes = b""
    error: str = ""   # why a request failed: the exception, or the body of a non-200 answer


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Servers close idle keep-alive connections (uvicorn after 5 s); one reused after that would
# fail on the client's side and be counted against the server, so older ones are dropped.
IDLE_LIMIT_S = 2.0


class Connections:
    """Idle keep-alive connections to one server, opened on demand."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[float, Connection]] = []

    async def take(self) -> Connection:
        now = time.monotonic()
        while self.idle:
            since, conn = self.idle.pop()
            if now - since < IDLE_LIMIT_S and not conn[0].at_eof():
                return conn
            conn[1].close()
        return await asyncio.open_connection(self.host, self.port)

    def give_back(self, conn: Connection) -> None:
        self.idle.append((time.monotonic(), conn))

    def close(self) -> None:
        for _, (_, writer) in self.idle:
            writer.close()
        self.idle.clear()


class EventClock:
    """Records when each blank-line-terminated SSE event is complete."""

    def __init__(self, start: float, keep_body: bool) -> None:
        self.start, self.keep_body = start, keep_body
        self.pending = b""
        self.times: list[float] = []
        self.body = bytearray()

    def feed(self, data: bytes, now: float) -> None:
        if self.keep_body:
            self.body += data
        self.pending += data
        while True:
            crlf, lf = self.pending.find(b"\r\n\r\n"), self.pending.find(b"\n\n")
            ends = [(i, n) for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
            if not ends:
                return
            index, size = min(ends)
            event, self.pending = self.pending[:index], self.pending[index + size:]
            if event.strip() and event.strip() != b"data: [DONE]":
                self.times.append(now - self.start)


async def exchange(
    conns: Connections, request: bytes, *, keep_body: bool = False
) -> Sample:
    """One request on a pooled connection; a connection that failed is not reused."""
    # perf_counter, not loop.time(): uvloop's clock has a resolution of one millisecond.
    clock_now = time.perf_counter
    reader, writer = conn = await conns.take()
    start = clock_now()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = head.decode("latin-1").lower()
    clock = EventClock(start, keep_body)
    if "transfer-encoding: chunked" in headers:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            clock.feed(data[:-2], clock_now())
    else:
        length = int(headers.split("content-length:", 1)[1].split("\r\n", 1)[0])
        clock.feed(await reader.readexactly(length), clock_now())
    latency = clock_now() - start
    if "connection: close" in headers:
        writer.close()
    else:
        conns.give_back(conn)
    sample = Sample(status, latency, clock.times, bytes(clock.body))
    if status != 200:
        sample.error = f"HTTP {status}"
    return sample


async def guarded(conns: Connections, request: bytes) -> Sample:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await exchange(conns, request)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            TimeoutError) as exc:
        return Sample(status=0, error=type(exc).__name__)


async def fixed_rate(target: Target, rate: float, count: int, warmup: int) -> list[Sample]:
    """`warmup` + `count` requests at `rate` per second; returns the last `count` samples."""
    loop = asyncio.get_running_loop()
    conns = Connections(target.host, target.port)
    request = target.request_bytes()
    tasks: list[asyncio.Task[Sample]] = []
    begin = loop.time() + 0.05
    try:
        for i in range(warmup + count):
            delay = begin + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(guarded(conns, request)))
        samples = await asyncio.gather(*tasks)
    finally:
        conns.close()
    return list(samples[warmup:])


async def one(target: Target) -> Sample:
    """A single request with its body kept: a readiness and sanity probe."""
    conns = Connections(target.host, target.port)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await exchange(conns, target.request_bytes(), keep_body=True)
    finally:
        conns.close()
