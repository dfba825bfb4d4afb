"""Two workers against one, and cometgate's CPU per request against the thinnest forwarder:
Gemini pass-through, accounting on (SQLite, the default), saturated with wrk, in one run.

    .venv/bin/python -m bench.proxy.workers                  # 3 rounds of 10 s per system
    .venv/bin/python -m bench.proxy.workers --rounds 1 --seconds 5

Each round starts, saturates and stops, one after the other: the floor forwarder
(`floor_app.py`), `cometgate serve --workers 1`, `cometgate serve --workers 2`; rounds
interleave so that the drift of a shared machine falls on all three alike, and each figure is
printed with the load average it was taken under. Ratios are medians over the rounds:
    scaling       req/s of two workers / req/s of one (the target: ≥ 1.7 on two free cores)
    CPU ratio     CPU per request of cometgate (one worker) / the forwarder's (target: ≤ 3)
    p99 ratio     p99 at saturation of cometgate (one worker) / the forwarder's (target: ≤ 3)
CPU is the whole process tree's (a parent and its workers), per request served.

wrk, the mock upstream and the systems share the machine: on two cores, two workers compete
with wrk and the mock for them, so scaling here is a lower bound of what two free cores give.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.proxy import services
from bench.proxy.measure import Measured, Plan, saturation_phase
from bench.proxy.procstat import load_average
from bench.proxy.run import machine, preflight, probe
from bench.proxy.scenarios import SCENARIOS, Scenario

PASSTHROUGH: Scenario = next(s for s in SCENARIOS if s.name == "passthrough")
SYSTEMS = ("floor", "cometgate-1", "cometgate-2")
STARTUP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Figure:
    system: str
    rps: float
    cpu_ms: float  # per request
    p99_ms: float  # wrk's 99th percentile latency at saturation
    mock_share: float
    errors: int
    load: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="saturation per system")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    plan = replace(Plan(), saturation_seconds=args.seconds, connections=args.connections)
    preflight(skip_litellm=True)
    services.install_cleanup()
    print(" ".join(["command:", sys.executable, "-m", "bench.proxy.workers", *sys.argv[1:]]))
    print(f"machine: {machine()}")
    print(f"plan: {args.rounds} rounds, {plan.saturation_seconds} s of wrk -c{plan.connections}"
          f" per system\nload average at start: {load_average()}", flush=True)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        workdir = Path(tmp)
        mock = services.start_mock(workdir)
        try:
            for round_number in range(1, args.rounds + 1):
                for system in SYSTEMS:
                    figure = saturate(plan, mock, workdir / f"{system}-{round_number}", system)
                    figures.append(figure)
                    print(f"  round {round_number} {system:12} {figure.rps:8.0f} req/s  "
                          f"{figure.cpu_ms:6.3f} ms CPU/req  p99 {figure.p99_ms:6.2f} ms  "
                          f"mock {figure.mock_share:4.2f} core  errors {figure.errors}  "
                          f"(load {figure.load})", flush=True)
        finally:
            services.stop(mock)
    print(f"\nload average at end: {load_average()}\n")
    print("\n".join(verdicts(figures)))
    return 0


def saturate(plan: Plan, mock: services.Service, workdir: Path, system: str) -> Figure:
    workdir.mkdir()
    if system == "floor":
        service, target = services.start_floor(workdir, mock, "floor"), None
    else:
        workers = int(system.rsplit("-", 1)[1])
        service, key = services.start_cometgate(workdir, mock, workers=workers)
        wait_for_workers(service, workers)
        target = PASSTHROUGH.cometgate(service.port, key)
    try:
        target = target or PASSTHROUGH.floor(service.port)
        probe(target, PASSTHROUGH, system, plan.chunks)
        load = load_average()
        measured = Measured(system, PASSTHROUGH.name, [], 0.0, load=load)
        saturation_phase(plan, mock, service.pid, target, measured)
    finally:
        services.stop(service)
    served = max(measured.sat_requests, 1)
    return Figure(system, measured.sat_rps, measured.sat_cpu * 1000 / served,
                  measured.sat_p99, measured.mock_share, measured.sat_errors, load)


def wait_for_workers(service: services.Service, workers: int) -> None:
    """/healthz answers once the first worker is up; the others start after it."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        log = service.log.read_text(errors="replace")
        if log.count("Application startup complete.") >= workers:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{workers} workers did not start in {STARTUP_SECONDS} s")


def verdicts(figures: list[Figure]) -> list[str]:
    def median(system: str, field: str) -> float:
        return statistics.median(getattr(f, field) for f in figures if f.system == system)

    rps = {s: median(s, "rps") for s in SYSTEMS}
    cpu = {s: median(s, "cpu_ms") for s in SYSTEMS}
    p99 = {s: median(s, "p99_ms") for s in SYSTEMS}
    scaling = rps["cometgate-2"] / rps["cometgate-1"]
    ratio = cpu["cometgate-1"] / cpu["floor"]
    lines = ["medians over the rounds:"]
    lines += [f"  {s:12} {rps[s]:8.0f} req/s  {cpu[s]:6.3f} ms CPU/req  p99 {p99[s]:6.2f} ms"
              for s in SYSTEMS]
    lines.append(f"two workers / one worker, req/s: {scaling:.2f}x "
                 f"({'meets' if scaling >= 1.7 else 'misses'} >= 1.7x)")
    lines.append(f"CPU per request, cometgate (one worker) / forwarder: {ratio:.1f}x "
                 f"({'meets' if ratio <= 3 else 'misses'} <= 3x)")
    tail = p99["cometgate-1"] / p99["floor"]
    lines.append(f"p99 at saturation, cometgate (one worker) / forwarder: {tail:.1f}x "
                 f"({'meets' if tail <= 3 else 'misses'} <= 3x)")
    lines.append(f"CPU per request, two workers / one worker: "
                 f"{cpu['cometgate-2'] / cpu['cometgate-1']:.2f}x")
    return lines


if __name__ == "__main__":
    sys.exit(main())
