"""Keeps the local model's worker process alive.

The worker (`python -m cometgate.worker`) is an OpenAI-compatible llama.cpp
server on a loopback port. Running it in its own process keeps CPU-bound decoding away from the
gateway's event loop and lets a crash of the native code cost a restart, not the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger("cometgate.local")

HEALTH_POLL_SECONDS = 0.2
RESTART_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class WorkerCommand:
    model_path: Path
    model_name: str
    host: str
    threads: int
    context_size: int
    repeat_penalty: float = 1.0

    def argv(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "cometgate.worker",
            "--model-path", str(self.model_path),
            "--model-name", self.model_name,
            "--host", self.host,
            "--port", str(port),
            "--threads", str(self.threads),
            "--context-size", str(self.context_size),
            "--repeat-penalty", str(self.repeat_penalty),
        ]


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class WorkerSupervisor:
    """Starts the worker, reports readiness, restarts it with backoff whenever it exits.

    Invariant: `ready` is true only between a successful health check and the moment the
    process is seen to exit, so callers get 503 rather than a hung connection meanwhile.
    """

    def __init__(self, command: WorkerCommand, *, port: int = 0) -> None:
        self._command = command
        self.port = port or free_port(command.host)
        self._ready = asyncio.Event()
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Fresh at each start of the gateway; the worker gets it on its stdin (worker_auth).
        self.token = secrets.token_urlsafe(32)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def base_url(self) -> str:
        return f"http://{self._command.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="local-model-supervisor")

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def _run(self) -> None:
        failures = 0
        auth = {"authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=2.0, headers=auth) as probe:
            while not self._stopping:
                started = asyncio.get_running_loop().time()
                await self._spawn()
                await self._watch(probe)
                if self._stopping:
                    return
                self.restarts += 1
                lived = asyncio.get_running_loop().time() - started
                failures = 0 if lived > 60 else failures + 1  # a long life resets the backoff
                delay = RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)]
                log.warning("local model worker exited; restarting in %.1fs", delay)
                await asyncio.sleep(delay)

    async def _spawn(self) -> None:
        argv = self._command.argv(self.port)
        self._process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE
        )
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(self.token.encode() + b"\n")
        with contextlib.suppress(ConnectionError):  # it died at once: _watch sees the exit
            await stdin.drain()
        stdin.close()
        log.info("local model worker started (pid %d, port %d)", self._process.pid, self.port)

    async def _watch(self, probe: httpx.AsyncClient) -> None:
        process = self._process
        assert process is not None
        exited = asyncio.ensure_future(process.wait())
        try:
            while not exited.done():
                if not self.ready and await _healthy(probe, f"{self.base_url}/health"):
                    self._ready.set()
                await asyncio.wait({exited}, timeout=HEALTH_POLL_SECONDS)
        finally:
            self._ready.clear()
            if not exited.done():
                exited.cancel()

    async def aclose(self) -> None:
        self._stopping = True
        self._ready.clear()
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=5.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _healthy(probe: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await probe.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@dataclass(frozen=True, slots=True)
class SharedWorker:
    """Where a worker supervised by another process (the parent of `serve --workers N`)
    listens, and the token it admits."""

    port: int
    token: str


class WorkerWatch:
    """A `WorkerSupervisor` seen from a process that does not own the worker: it only follows
    the worker's health, so readiness means the same thing in every gateway process while one
    process alone starts and restarts the model."""

    def __init__(self, host: str, shared: SharedWorker) -> None:
        self.port = shared.port
        self.token = shared.token
        self._host = host
        self._ready = False
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="local-model-watch")

    async def _run(self) -> None:
        auth = {"authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=2.0, headers=auth) as probe:
            while True:
                self._ready = await _healthy(probe, f"{self.base_url}/health")
                await asyncio.sleep(HEALTH_POLL_SECONDS)

    async def aclose(self) -> None:
        self._ready = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
