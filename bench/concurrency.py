"""Many streams at once through the gateway, with the gateway's memory sampled meanwhile.

The RSS sampler runs on its own thread so that a busy event loop in the benchmark cannot make
it miss the peak; it reads only the gateway's /proc entry (the worker is another process).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from probes import GatewayClient, Timing
from processes import rss_kib


class RssSampler:
    """Samples one process's VmRSS every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._stopped = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.samples.append(rss_kib(self._pid))
            except OSError:
                return  # the process is gone; the run will report the failure
            self._stopped.wait(self._interval)

    @property
    def peak_kib(self) -> int:
        return max(self.samples, default=0)


@dataclass(frozen=True, slots=True)
class ConcurrentRun:
    timings: list[Timing]  # in submission order
    failures: list[str]
    wall: float  # first send → last response complete
    peak_rss_kib: int
    rss_samples: int


async def concurrent_streams(
    gateway: GatewayClient, gateway_pid: int, body: bytes, count: int, limit_seconds: float
) -> ConcurrentRun:
    """`count` identical streaming requests sent together; each one's outcome is kept."""
    with RssSampler(gateway_pid) as sampler:
        started = time.perf_counter()
        tasks = [asyncio.ensure_future(gateway.stream(body)) for _ in range(count)]
        _, pending = await asyncio.wait(tasks, timeout=limit_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - started
    timings: list[Timing] = []
    failures: list[str] = []
    for index, task in enumerate(tasks):
        if task in pending:
            failures.append(f"request {index}: not finished within {limit_seconds:.0f}s")
        elif (error := task.exception()) is not None:
            failures.append(f"request {index}: {type(error).__name__}: {error}")
        else:
            timings.append(task.result())
    return ConcurrentRun(timings, failures, wall, sampler.peak_kib, len(sampler.samples))
