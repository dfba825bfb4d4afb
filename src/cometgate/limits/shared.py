"""One limiter for the worker processes of one `cometgate serve --workers N`, without Redis.

The parent process holds a `MemoryLimiter` and serves it on a Unix socket (`LimiterServer`);
each worker reaches it through a `SharedLimiter`, which is a `Limiter` like any other. Every
acquire and settle of every worker is then one step of one limiter, so rpm, tpm, concurrency
and budgets are exact across workers exactly as they are within one process — the same
guarantee Redis gives replicas, at the price of one round trip on a local socket per call.

Why not SQLite: a check-and-update per request would be a write transaction on the request
path, serialised with the usage writer's commits on the database's one write lock.

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
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cometgate.limits.limiter import Lease, Limiter
from cometgate.limits.policy import Limits, LimitState

log = logging.getLogger("cometgate.limits")

_HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 20  # a call is a few hundred bytes; anything this large is not ours
_CALLS = frozenset({"acquire", "renew", "settle", "state"})


class SharedLimiterUnavailable(ConnectionError):
    """The parent's limiter cannot be reached (the parent is gone or stopping)."""


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"a limiter frame of {size} bytes is larger than {MAX_FRAME}")
    return pickle.loads(await reader.readexactly(size))


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


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
        try:
            while True:
                call_id, name, args, kwargs = await _read_frame(reader)
                # Each call is its own task: an acquire waiting on a spend read must not hold
                # up the settles queued behind it on the same connection.
                task = asyncio.create_task(self._answer(writer, call_id, name, args, kwargs))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; its leases lapse after their TTL
        except Exception:
            log.exception("closing a limiter connection that sent an unreadable frame")
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, call_id: int, name: str,
                      args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            if name not in _CALLS:
                raise ValueError(f"the limiter has no call {name!r}")
            reply: tuple[int, bool, object] = (
                call_id, True, await getattr(self._limiter, name)(*args, **kwargs))
        except Exception as error:  # the worker raises it as its own caller would have seen it
            reply = (call_id, False, error)
        if not writer.is_closing():
            writer.write(_frame(reply))


class SharedLimiter:
    """`Limiter` whose every call is answered by the parent's `LimiterServer`.

    One connection per worker, opened on first use in the worker's event loop; calls are
    multiplexed on it by id, so concurrent requests never wait on each other's round trips."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None

    async def acquire(
        self, key_id: int, limits: Limits, *, tokens: int, cost: Decimal, now: datetime
    ) -> Lease:
        lease: Lease = await self._call(
            "acquire", (key_id, limits), {"tokens": tokens, "cost": cost, "now": now})
        return lease

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        await self._call("renew", (list(leases), now), {})

    async def settle(self, lease: Lease, *, tokens: int, cost: Decimal, now: datetime) -> None:
        await self._call("settle", (lease,), {"tokens": tokens, "cost": cost, "now": now})

    async def state(self, key_id: int, limits: Limits, now: datetime) -> LimitState:
        state: LimitState = await self._call("state", (key_id, limits, now), {})
        return state

    async def aclose(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
        self._fail_pending()

    async def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        writer = await self._connected()
        call_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._pending[call_id] = answer
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
        try:
            while True:
                call_id, ok, value = await _read_frame(reader)
                answer = self._pending.pop(call_id, None)
                if answer is not None and not answer.done():
                    answer.set_result((ok, value))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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
