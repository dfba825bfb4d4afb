"""One limiter for the worker processes of one `cometgate serve --workers N`, without Redis.

The parent process holds a `MemoryLimiter` and serves it on a Unix socket (`LimiterServer`);
each worker reaches it through a `SharedLimiter`, which is a `Limiter` like any other. Every
acquire and settle of every worker is then one step of one limiter, so rpm, tpm, concurrency
and budgets are exact across workers exactly as they are within one process — the same
guarantee Redis gives replicas, at the price of one round trip on a local socket per call.

Why not SQLite: a check-and-update per request would be a write transaction on the request
path, serialised with the usage writer's commits on the database's one write lock.

A key with nothing to enforce (no rate, concurrency or budget limit) can never be refused, so
its admission needs no answer: the worker makes the lease itself and tells the parent, which
counts it (the balance endpoint reads those counts) — no round trip on the request path for
most keys. A key with limits waits for the parent's answer at admission and at settlement, so
its next admission, on any worker, sees what this one spent.

Frames are a 4-byte length and a pickle. Pickle is safe here only because both ends are this
program under one user: the socket lives in a directory only that user can enter (0700), the
same trust the standard library's multiprocessing gives its own pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import struct
import uuid
from collections.abc import Coroutine, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cometgate.limits.limiter import Lease, Limiter, check_request
from cometgate.limits.policy import Limits, LimitState, as_utc

log = logging.getLogger("cometgate.limits")

_HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 20  # a call is a few hundred bytes; anything this large is not ours
_CALLS = frozenset({"acquire", "renew", "settle", "state"})
_READ_CHUNK = 1 << 16


class SharedLimiterUnavailable(ConnectionError):
    """The parent's limiter cannot be reached (the parent is gone or stopping)."""


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def _frames(buffer: bytearray) -> list[Any]:
    """The complete frames at the start of `buffer`, removed from it."""
    messages = []
    start = 0
    while len(buffer) - start >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, start)
        if size > MAX_FRAME:
            raise ValueError(f"a limiter frame of {size} bytes is larger than {MAX_FRAME}")
        end = start + _HEADER.size + size
        if end > len(buffer):
            break
        messages.append(pickle.loads(buffer[start + _HEADER.size:end]))
        start = end
    del buffer[:start]
    return messages


NO_LIMITS = Limits()


def enforces(limits: Limits) -> bool:
    """Whether `limits` can refuse a request (otherwise admission needs no answer). A period
    budget has its period and its amount together, so limits that enforce nothing are
    `NO_LIMITS` exactly: told messages need not carry them."""
    return limits != NO_LIMITS


class LimiterServer:
    """Serves `limiter` to the workers on a Unix socket at `path`."""

    def __init__(self, limiter: Limiter, path: Path) -> None:
        self._limiter = limiter
        self._path = path
        self._server: asyncio.Server | None = None
        self._socket: socket.socket | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._connections: set[asyncio.StreamWriter] = set()

    def bind(self) -> None:
        """Listen on the path now: connections made before `start` wait in the backlog."""
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(str(self._path))
        os.chmod(self._path, 0o600)
        listening.listen(128)
        self._socket = listening

    async def start(self) -> None:
        if self._socket is None:
            self.bind()
        self._server = await asyncio.start_unix_server(self._serve, sock=self._socket)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        elif self._socket is not None:
            self._socket.close()
        for connection in list(self._connections):
            connection.close()  # a closed server still serves open connections otherwise
        for task in list(self._calls):
            task.cancel()
        self._path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        told = _Told(self._limiter)  # this worker's leases, by the ids it gave them
        buffer = bytearray()
        try:
            while chunk := await reader.read(_READ_CHUNK):
                buffer += chunk
                # One task for a run of told messages, in their order, before the call that
                # follows them: it must see what they counted.
                heard: list[Any] = []
                for message in _frames(buffer):
                    if message[0] is None:
                        heard.append(message)
                        continue
                    if heard:
                        self._spawn(told.apply(heard))
                        heard = []
                    self._spawn(self._answer(writer, told, *message))
                if heard:
                    self._spawn(told.apply(heard))
        except (ConnectionError, ValueError, pickle.UnpicklingError):
            log.exception("closing a limiter connection that failed or sent a bad frame")
        finally:
            self._connections.discard(writer)
            writer.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Each call is its own task: an acquire waiting on a spend read must not hold up the
        # settles queued behind it on the same connection.
        task = asyncio.create_task(work)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _answer(self, writer: asyncio.StreamWriter, told: _Told, call_id: int, name: str,
                      args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            if name not in _CALLS:
                raise ValueError(f"the limiter has no call {name!r}")
            if name == "renew":
                args = (told.own(args[0]), *args[1:])
            reply: tuple[int, bool, object] = (
                call_id, True, await getattr(self._limiter, name)(*args, **kwargs))
        except Exception as error:  # the worker raises it as its own caller would have seen it
            reply = (call_id, False, error)
        if not writer.is_closing():
            writer.write(_frame(reply))


class _Told:
    """The leases one worker made itself (keys with nothing to enforce), under the leases the
    parent's limiter gave when it counted them. Applied one after the other, in order."""

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self._leases: dict[str, Lease] = {}
        self._tail: asyncio.Future[None] | None = None

    def own(self, leases: Sequence[Lease]) -> list[Lease]:
        return [self._leases.get(lease.lease_id, lease) for lease in leases]

    async def apply(self, messages: list[Any]) -> None:
        previous = self._tail
        self._tail = done = asyncio.get_running_loop().create_future()
        try:
            if previous is not None:
                await previous
            for _, name, fields in messages:
                await self._apply_one(name, fields)
        finally:
            done.set_result(None)

    async def _apply_one(self, name: str, fields: tuple[Any, ...]) -> None:
        try:
            if name == "acquired":
                lease_id, key_id, tokens, cost, acquired_at = fields
                self._leases[lease_id] = await self._limiter.acquire(
                    key_id, NO_LIMITS, tokens=tokens, cost=Decimal(cost), now=acquired_at)
            elif name == "settle":
                lease_id, tokens, cost, now = fields
                lease = self._leases.pop(lease_id, None)
                if lease is not None:  # else never counted: its acquire was logged failing
                    await self._limiter.settle(lease, tokens=tokens, cost=Decimal(cost), now=now)
            else:
                raise ValueError(f"the limiter cannot be told {name!r}")
        except Exception:  # nobody waits for an answer: the log is where it goes
            log.exception("a worker's %s could not be counted", name)


class SharedLimiter:
    """`Limiter` whose every call is answered (or, for keys with nothing to enforce, heard)
    by the parent's `LimiterServer`.

    One connection per worker, opened on first use in the worker's event loop; calls are
    multiplexed on it by id, so concurrent requests never wait on each other's round trips;
    told messages are gathered and written once per turn of the event loop."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None
        self._outgoing = bytearray()

    async def acquire(
        self, key_id: int, limits: Limits, *, tokens: int, cost: Decimal, now: datetime
    ) -> Lease:
        if not enforces(limits):
            check_request(tokens, cost)
            lease = Lease(uuid.uuid4().hex, key_id, limits, tokens, cost, as_utc(now))
            await self._tell("acquired", (lease.lease_id, key_id, tokens, str(cost),
                                          lease.acquired_at))
            return lease
        answer: Lease = await self._call(
            "acquire", (key_id, limits), {"tokens": tokens, "cost": cost, "now": now})
        return answer

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        await self._call("renew", (list(leases), now), {})

    async def settle(self, lease: Lease, *, tokens: int, cost: Decimal, now: datetime) -> None:
        settled = {"tokens": tokens, "cost": cost, "now": now}
        if not enforces(lease.limits):
            check_request(tokens, cost)
            await self._tell("settle", (lease.lease_id, tokens, str(cost), now))
            return
        await self._call("settle", (lease,), settled)

    async def state(self, key_id: int, limits: Limits, now: datetime) -> LimitState:
        state: LimitState = await self._call("state", (key_id, limits, now), {})
        return state

    async def aclose(self) -> None:
        self._flush()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
        self._fail_pending()

    async def _tell(self, name: str, fields: tuple[Any, ...]) -> None:
        """Plain values only: pickling them costs a third of pickling the dataclasses."""
        await self._connected()
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing += _frame((None, name, fields))

    def _flush(self) -> None:
        if self._outgoing and self._writer is not None and not self._writer.is_closing():
            self._writer.write(bytes(self._outgoing))
        self._outgoing.clear()

    async def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        writer = await self._connected()
        call_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._pending[call_id] = answer
        self._flush()  # what was told before this call reaches the parent before it
        writer.write(_frame((call_id, name, args, kwargs)))
        ok, value = await answer
        if not ok:
            raise value
        return value

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is None or self._writer.is_closing():
                try:
                    reader, self._writer = await asyncio.open_unix_connection(str(self._path))
                except OSError as error:
                    raise SharedLimiterUnavailable(
                        f"the shared limiter at {self._path} is unreachable: {error}") from error
                self._reader_task = asyncio.create_task(self._read(reader),
                                                        name="shared-limiter-replies")
            return self._writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while chunk := await reader.read(_READ_CHUNK):
                buffer += chunk
                for call_id, ok, value in _frames(buffer):
                    answer = self._pending.pop(call_id, None)
                    if answer is not None and not answer.done():
                        answer.set_result((ok, value))
        except (ConnectionError, ValueError, pickle.UnpicklingError):
            log.exception("the shared limiter sent a bad frame or the connection failed")
        finally:
            if self._writer is not None:
                self._writer.close()
            self._fail_pending()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(
                    SharedLimiterUnavailable("the shared limiter closed the connection"))
