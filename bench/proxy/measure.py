"""The two measurements of one scenario on one system, with the system's own costs.

1. Fixed rate (open loop, `run.rate` req/s) with the mock answering like a real upstream
   (first byte after `latency_ms`, stream events every `interval_ms`): latency, first event,
   inter-event gaps; the system's CPU time over the phase.
2. Saturation (wrk, closed loop, a few connections) with the mock answering at once: req/s,
   the system's CPU time, the mock's share of one core (it must stay well below 1, or the mock
   would be the bottleneck), and the peak VmRSS of the system's process.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.proxy import profile
from bench.proxy.open_loop import Sample, Target, fixed_rate
from bench.proxy.procstat import PeakRss, cpu_seconds, rss_mb
from bench.proxy.services import Service, set_mock_timing

WRK_SCRIPT = Path(__file__).parent / "wrk" / "post.lua"


@dataclass(frozen=True, slots=True)
class Plan:
    rate: float = 40.0
    count: int = 800          # measured requests at the fixed rate, after the warm-up
    warmup: int = 80
    latency_ms: float = 20.0
    chunks: int = 20
    interval_ms: float = 10.0
    saturation_seconds: int = 10
    connections: int = 8


@dataclass(slots=True)
class Measured:
    system: str
    scenario: str
    samples: list[Sample]
    cpu_fixed: float          # CPU seconds of the system (process tree) in the fixed-rate phase
    sat_rps: float = 0.0
    sat_requests: int = 0
    sat_errors: int = 0
    sat_cpu: float = 0.0
    sat_p99: float = float("nan")  # ms, wrk's 99th percentile at saturation
    mock_share: float = 0.0   # mock CPU seconds / wall seconds during saturation
    rss_idle: float = 0.0
    rss_peak: float = 0.0
    load: str = ""


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


def settle(pid: int, *, quiet_share: float = 0.05, limit_s: float = 90.0) -> None:
    """Waits until the system uses under `quiet_share` of a core: a gateway still working
    through abandoned requests of the previous phase would otherwise slow the next one."""
    deadline = time.monotonic() + limit_s
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < quiet_share * 0.5:
            return
        last = now


def fixed_rate_phase(plan: Plan, mock: Service, system_pid: int,
                     target: Target) -> tuple[list[Sample], float]:
    set_mock_timing(mock, latency_ms=plan.latency_ms, chunks=plan.chunks,
                    interval_ms=plan.interval_ms)
    settle(system_pid)
    before = cpu_seconds(system_pid)
    samples = run_async(fixed_rate(target, plan.rate, plan.count, plan.warmup))
    # The warm-up requests are included in the CPU time; so is their count.
    used = cpu_seconds(system_pid) - before
    return samples, used * plan.count / (plan.count + plan.warmup)


def saturation_phase(plan: Plan, mock: Service, system_pid: int, target: Target,
                     measured: Measured, profile_to: Path | None = None) -> None:
    set_mock_timing(mock, latency_ms=0, chunks=plan.chunks, interval_ms=0)
    settle(system_pid)
    with tempfile.NamedTemporaryFile("wb", suffix=".json") as body:
        body.write(target.body)
        body.flush()
        env = {**os.environ, "BENCH_BODY_FILE": body.name,
               "BENCH_HEADERS": "\n".join(f"{n}: {v}" for n, v in target.headers)}
        url = f"http://{target.host}:{target.port}{target.path}"
        command = ["wrk", "-t1", f"-c{plan.connections}", f"-d{plan.saturation_seconds}s",
                   "--timeout", "10s", "-s", str(WRK_SCRIPT), url]
        cpu_before, mock_before = cpu_seconds(system_pid), cpu_seconds(mock.pid)
        with PeakRss(system_pid) as rss:
            sampler = (profile.start(system_pid, max(1, plan.saturation_seconds - 2), profile_to)
                       if profile_to else None)
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=plan.saturation_seconds + 60)
            if sampler is not None:
                sampler.wait(timeout=30)
        measured.sat_cpu = cpu_seconds(system_pid) - cpu_before
        measured.mock_share = (cpu_seconds(mock.pid) - mock_before) / plan.saturation_seconds
        measured.rss_peak = max(measured.rss_peak, rss.peak)
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    counts = re.search(r"BENCH non200=(\d+) requests=(\d+) p99_us=(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if rps is None or counts is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    measured.sat_rps = float(rps.group(1))
    measured.sat_requests = int(counts.group(2))
    measured.sat_p99 = int(counts.group(3)) / 1000
    measured.sat_errors = int(counts.group(1)) + (
        sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)


def measure(plan: Plan, mock: Service, system: str, system_pid: int, scenario: str,
            target: Target, load: str, profile_to: Path | None = None) -> Measured:
    rss_idle = rss_mb(system_pid)
    with PeakRss(system_pid) as rss:
        samples, cpu = fixed_rate_phase(plan, mock, system_pid, target)
    measured = Measured(system, scenario, samples, cpu, rss_idle=rss_idle, rss_peak=rss.peak,
                        load=load)
    saturation_phase(plan, mock, system_pid, target, measured, profile_to)
    return measured
