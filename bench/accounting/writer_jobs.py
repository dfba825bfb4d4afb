"""Runs writer_rate.py once per backend and caller count, each on a fresh database, in a
process of its own; py-spy samples it when asked, or when the rate misses the target."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from bench.accounting import backends, profiling
from bench.accounting.report import WRITE_RATE_TARGET
from bench.proxy import services
from bench.proxy.measure import run_async
from bench.proxy.procstat import load_average

LONE_RECORDS = 300
TIMEOUT_MARGIN_S = 120


@dataclass(frozen=True, slots=True)
class WriterJob:
    name: str
    backend: str                  # "sqlite" or "postgres"
    callers: tuple[int, ...]


def run_writers(jobs: list[WriterJob], workdir: Path, seconds: float,
                profile: str) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for job in jobs:
        runs = [_run(job, callers, workdir, seconds, None) for callers in job.callers]
        merged = {"lone": runs[0]["lone"], "sustained": [r["sustained"] for r in runs],
                  "rows_stored": sum(r["rows_stored"] for r in runs),
                  "acknowledged": sum(r["acknowledged"] for r in runs)}
        results[job.name] = merged
        for r in runs:
            s = r["sustained"]
            print(f"  {job.name:24} {s['callers']:4} callers: {s['records_per_s']:.0f} "
                  f"records/s, mean batch {s['batch_mean']:.0f} (load {r['load']})", flush=True)
        best = max(s["records_per_s"] for s in merged["sustained"])
        if profile == "always" or (profile == "auto" and best < WRITE_RATE_TARGET):
            out = workdir / f"profile-writer-{job.backend}.txt"
            _run(job, job.callers[-1], workdir, seconds, out)
            print(f"\nprofile of UsageWriter ({job.name}, {job.callers[-1]} callers), "
                  f"\n{profiling.hotspots(out)}\n", flush=True)
    return results


def _run(job: WriterJob, callers: int, workdir: Path, seconds: float,
         profile_to: Path | None) -> dict[str, Any]:
    schema = None
    if job.backend == "postgres":
        schema, url = run_async(backends.fresh_schema(os.environ[backends.POSTGRES_VARIABLE]))
    else:
        folder = workdir / f"writer-{time.monotonic_ns()}"
        folder.mkdir()
        url = f"sqlite+aiosqlite:///{folder / 'usage.db'}"
    command = [str(services.VENV_BIN / "python"), "-m", "bench.accounting.writer_rate",
               "--url", url, "--callers", str(callers), "--seconds", str(seconds),
               "--lone", str(LONE_RECORDS)]
    log = workdir / f"writer-{time.monotonic_ns()}.json"
    load = load_average()
    try:
        service = services.spawn(f"writer-{job.name}", command, port=0, log=log,
                                 cwd=services.ROOT)
        sampler = None
        if profile_to is not None:
            time.sleep(1.0)  # into the warm-up; py-spy then samples the sustained phase
            sampler = profiling.start(service.pid, max(1, int(seconds) - 1), profile_to)
        try:
            service.process.wait(timeout=seconds + TIMEOUT_MARGIN_S)
        finally:
            services.stop(service)
            if sampler is not None:
                sampler.wait(timeout=60)
        if service.process.returncode not in (0, 1):
            raise RuntimeError(f"writer_rate failed ({service.process.returncode}): "
                               f"{log.read_text()[-2000:]}")
        result: dict[str, Any] = orjson.loads(log.read_bytes().splitlines()[-1])
    finally:
        if schema is not None:
            run_async(backends.drop_schema(os.environ[backends.POSTGRES_VARIABLE], schema))
    result["load"] = load
    return result
