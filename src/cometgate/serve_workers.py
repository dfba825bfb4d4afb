"""`cometgate serve --workers N`: N gateway processes behind one listening socket.

    parent   binds the socket once, migrates the database, serves the limiter to the workers
             (limits/shared.py; not when Redis shares the limits), supervises the local
             models (one llama.cpp worker each, whatever N), starts the workers and starts
             another in place of one that dies; SIGTERM or Ctrl-C stops them all gracefully
    worker   a whole gateway (create_app) accepting on the inherited socket: the kernel hands
             each new connection to one of the processes waiting in accept()

Each worker journals usage in segments of its own (storage/usage_log.py locks them), so a
worker started in place of a dead one recovers what the dead one journaled and nothing of a
live sibling's. Worker 0 starts alone, and the others once it answers: its first start is the
server's start, when unfinished background responses are marked failed (worker_role.py).
Workers die with the parent (PR_SET_PDEATHSIG), so a kill -9 of the parent leaves no orphan
holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx

from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.shared import LimiterServer
from cometgate.providers.local.provider import LocalProvider
from cometgate.providers.local.supervisor import SharedWorker
from cometgate.providers.registry import local_provider
from cometgate.settings import LocalProviderSettings, Settings
from cometgate.storage.database import create_database, migrate
from cometgate.storage.usage import UsageQueries
from cometgate.worker_role import WorkerRole

log = logging.getLogger("cometgate.workers")

RESTART_DELAY_SECONDS = 1.0  # a worker that dies at once is not restarted in a tight loop
FIRST_WORKER_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 20.0  # uvicorn's own graceful shutdown (10 s) and then some
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s %(message)s"
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """One per core this process may run on (every core where the OS cannot say)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return max(1, len(affinity(0)) if affinity else os.cpu_count() or 1)


def run_workers(settings: Settings, count: int) -> int:
    """The process's exit status: 0 after a stop asked for, 1 if the server could not start."""
    server = settings.server
    try:
        listening = _listening_socket(server.host, server.port)
    except OSError as error:
        log.error("cannot listen on %s:%d: %s", server.host, server.port, error.strerror)
        return 1
    parent = _Parent(settings, count)
    asyncio.run(parent.serve(listening))
    return 1 if parent.failed else 0


class _Parent:
    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self._count = count
        self._stopping = asyncio.Event()
        self._processes: dict[int, BaseProcess] = {}
        self._ended: dict[int, asyncio.Future[None]] = {}  # one watch per process: see _exited
        self._spawn = multiprocessing.get_context("spawn")
        self.failed = False  # worker 0 never answered

    async def serve(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stopping.set)
        database = create_database(self._settings.database_url)
        await migrate(database)  # once, before any worker: they would race to do it
        local = _local_models(self._settings)
        with tempfile.TemporaryDirectory(prefix="cometgate-") as runtime:  # mode 0700
            limiter_server = self._limiter_server(database_queries=UsageQueries(database),
                                                  path=Path(runtime) / "limits.sock")
            try:
                if limiter_server is not None:
                    await limiter_server.start()
                for provider in local.values():
                    await provider.start()
                shared = {name: SharedWorker(p.supervisor.port, p.supervisor.token)
                          for name, p in local.items()}
                socket_path = Path(runtime) / "limits.sock" if limiter_server else None
                await self._run_workers(listening, socket_path, shared)
            finally:
                await self._stop_workers()
                for provider in local.values():
                    await provider.aclose()
                if limiter_server is not None:
                    await limiter_server.aclose()
                await database.aclose()
                listening.close()

    def _limiter_server(self, *, database_queries: UsageQueries,
                        path: Path) -> LimiterServer | None:
        if self._settings.limits.redis_url is not None:
            return None  # every worker talks to Redis, as replicas do
        ttl = timedelta(seconds=self._settings.limits.lease_ttl_seconds)
        return LimiterServer(MemoryLimiter(database_queries, lease_ttl=ttl), path)

    async def _run_workers(self, listening: socket.socket, limiter_socket: Path | None,
                           local: dict[str, SharedWorker]) -> None:
        def role(index: int, first_start: bool) -> WorkerRole:
            return WorkerRole(index, sweeps=index == 0, claims_batches=index == 0,
                              recovers_background=index == 0 and first_start,
                              limiter_socket=limiter_socket, local_models=local)

        slots = [asyncio.create_task(self._keep(0, listening, role))]
        if not await self._first_answers(listening):
            self.failed = not self._stopping.is_set()
            self._stopping.set()
        slots += [asyncio.create_task(self._keep(i, listening, role))
                  for i in range(1, self._count)]
        await self._stopping.wait()
        await self._stop_workers()
        await asyncio.gather(*slots, return_exceptions=True)

    async def _keep(self, index: int, listening: socket.socket,
                    role: Callable[[int, bool], WorkerRole]) -> None:
        """Runs worker `index`, and another in its place whenever it dies, until stopping."""
        first_start = True
        while not self._stopping.is_set():
            process = self._spawn.Process(
                target=_worker_main, name=f"cometgate-worker-{index}",
                args=(self._settings, role(index, first_start), listening, os.getpid()))
            process.start()
            self._processes[index] = process
            self._ended[index] = ended = asyncio.ensure_future(_exited(process))
            log.info("worker %d started (pid %s)", index, process.pid)
            await asyncio.shield(ended)
            if self._stopping.is_set():
                return
            log.warning("worker %d (pid %s) exited with %s; starting another", index,
                        process.pid, process.exitcode)
            first_start = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RESTART_DELAY_SECONDS)

    async def _first_answers(self, listening: socket.socket) -> bool:
        """Wait until worker 0, alone on the socket, answers /healthz (its start is done)."""
        url = f"http://{_reachable(listening)}/healthz"
        deadline = asyncio.get_running_loop().time() + FIRST_WORKER_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=2.0) as http:
            while asyncio.get_running_loop().time() < deadline:
                if self._stopping.is_set():
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return True
                await asyncio.sleep(0.1)
        log.error("worker 0 did not answer within %.0f s; stopping", FIRST_WORKER_TIMEOUT_SECONDS)
        return False

    async def _stop_workers(self) -> None:
        live = {i: p for i, p in self._processes.items() if p.exitcode is None}
        for process in live.values():
            process.terminate()  # SIGTERM: uvicorn finishes the requests it is serving
        ended = [self._ended[i] for i in live]
        if not ended:
            return
        _, late = await asyncio.wait(ended, timeout=STOP_TIMEOUT_SECONDS)
        for index, process in live.items():
            if self._ended[index] in late:
                process.kill()
        if late:
            await asyncio.wait(late)


def _local_models(settings: Settings) -> dict[str, LocalProvider]:
    return {spec.name: local_provider(settings, spec) for spec in settings.providers
            if isinstance(spec, LocalProviderSettings)}


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _reachable(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _exited(process: BaseProcess) -> None:
    """Return once `process` has ended (its sentinel becomes readable). Only one may wait on
    a process: a second reader on the same sentinel would replace the first one's."""
    if process.exitcode is not None:
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(process.sentinel, on_ready)
    try:
        await ended
    finally:
        loop.remove_reader(process.sentinel)
    process.join()


def _worker_main(settings: Settings, role: WorkerRole, listening: socket.socket,
                 parent: int) -> None:
    """The body of a worker process (spawned: a fresh interpreter)."""
    _die_with(parent)
    logging.basicConfig(level=logging.INFO, format=WORKER_LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from cometgate.server import run  # the server stack is only imported in workers

    run(settings, role=role, sockets=[listening])


def _die_with(parent: int) -> None:
    """SIGTERM this process when the parent ends, however it ends (Linux); and out of the
    terminal's process group, so that Ctrl-C reaches the parent alone, which then stops the
    workers once (a second signal would make uvicorn skip its graceful shutdown)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)
