"""The cost of accounting (per-key limits + usage records), measured side by side in one run.

    .venv/bin/python -m bench.accounting.run              # full run (about 7 minutes)
    .venv/bin/python -m bench.accounting.run --quick      # smoke run (about 2 minutes)
    .venv/bin/python -m bench.accounting.run --profile always --skip-postgres

1. Latency at a fixed rate (open loop) through cometgate in front of the fast mock upstream,
   `server.accounting` off (auth and access rules only) and on (limits + usage record), on
   (a) SQLite + in-process limits and (b) PostgreSQL + Redis. Off and on alternate by round
   (off, on, then on, off, …) so that a drift of the machine's load falls on both.
2. UsageWriter alone (bench/accounting/writer_rate.py in its own process): records/s with many
   concurrent callers, batch sizes, and the latency and CPU time of one lone commit; SQLite
   and PostgreSQL, each as the gateway runs it.
3. py-spy hotspots (file:line) of the gateway and the writer when a target is missed.

PostgreSQL and Redis come from scripts/services (started here if their URLs are not set); the
run uses a fresh schema and a key with a random id, and removes both. Linux only, 127.0.0.1
only; every child process is stopped on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.accounting import backends, gateway, profiling, report
from bench.accounting.backends import Backend
from bench.accounting.latency import Phase, Rate, probe, run_round
from bench.accounting.writer_jobs import WriterJob, run_writers
from bench.proxy import services
from bench.proxy.measure import run_async
from bench.proxy.open_loop import Target
from bench.proxy.procstat import load_average
from bench.proxy.scenarios import SCENARIOS, Scenario

import cometgate

SCENARIO_OF = {"generate": SCENARIOS[0], "stream": SCENARIOS[2]}  # pass-through, Gemini both


@dataclass(frozen=True, slots=True)
class Plan:
    rate: Rate
    rounds: int
    chunks: int
    interval_ms: float
    writer_seconds: float
    writer_callers: tuple[int, ...]
    profile_seconds: int


FULL = Plan(Rate(100, 5, 1), rounds=4, chunks=10, interval_ms=1.0, writer_seconds=10,
            writer_callers=(32, 256), profile_seconds=8)
QUICK = Plan(Rate(100, 3, 0.5), rounds=2, chunks=10, interval_ms=1.0, writer_seconds=3,
             writer_callers=(256,), profile_seconds=3)


def ensure_services() -> None:
    """Starts PostgreSQL and Redis with scripts/services when their URLs are not set."""
    if not backends.services_missing():
        return
    done = subprocess.run([str(services.ROOT / "scripts" / "services")], capture_output=True,
                          text=True, timeout=600)
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name in (backends.POSTGRES_VARIABLE, backends.REDIS_VARIABLE):
            os.environ[name] = shlex.split(value)[0] if value else ""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    fs = subprocess.run(["df", "-T", tempfile.gettempdir()], capture_output=True,
                        text=True).stdout.splitlines()[-1].split()[1]
    return (f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs ({cpu}); "
            f"Python {platform.python_version()}; temp dir on {fs}")


def latency_part(plan: Plan, workdir: Path, mock: services.Service, backend: Backend,
                 phases: dict[tuple[str, str, str], Phase], modes: tuple[str, ...]) -> None:
    """Each round runs every mode, in an order rotated by one each round."""
    for round_index in range(plan.rounds):
        shift = round_index % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            service = gateway.start(workdir, mock, backend, mode)
            try:
                for name, scenario in SCENARIO_OF.items():
                    target = scenario.cometgate(service.port, backend.key)
                    probe(target, scenario.stream)
                    phase = phases.setdefault((backend.name, name, mode), Phase())
                    run_round(target, service.pid, plan.rate, phase)
                    print(f"  {backend.name:8} round {round_index + 1} {mode:9} {name:8} "
                          f"p50 {phase.round_p50s[-1]:.2f} ms (load {phase.loads[-1]})",
                          flush=True)
            finally:
                services.stop(service)


def profile_gateway(plan: Plan, workdir: Path, mock: services.Service, backend: Backend) -> None:
    """One more round with accounting on, under py-spy (CPU view)."""
    scenario: Scenario = SCENARIO_OF["generate"]
    service = gateway.start(workdir, mock, backend, "on")
    try:
        target: Target = scenario.cometgate(service.port, backend.key)
        probe(target, stream=False)
        rate = Rate(plan.rate.per_second, plan.profile_seconds + 2, 0.5)
        out = workdir / f"profile-gateway-{backend.name}.txt"
        sampler = profiling.start(service.pid, plan.profile_seconds, out)
        time.sleep(0.5)  # py-spy attaches before the requests start
        run_round(target, service.pid, rate, Phase())
        sampler.wait(timeout=60)
        print(f"\nprofile of the gateway ({backend.name}, accounting on, "
              f"generateContent at {rate.per_second:.0f}/s):\n" + profiling.hotspots(out),
              flush=True)
    finally:
        services.stop(service)


def writer_jobs(plan: Plan, postgres: bool) -> list[WriterJob]:
    jobs = [WriterJob("sqlite", "sqlite", plan.writer_callers)]
    if postgres:
        jobs.append(WriterJob("postgres", "postgres", plan.writer_callers))
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--skip-postgres", action="store_true",
                        help="SQLite + in-process limits only")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="py-spy the gateway and the writer: when a target is missed (auto)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    services.install_cleanup()
    if args.profile != "never" and not profiling.available():
        print("py-spy not found in .venv: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    if not args.skip_postgres:
        ensure_services()
        missing = backends.services_missing()
        if missing:
            print(f"PostgreSQL/Redis unavailable ({', '.join(missing)} unset); "
                  "use --skip-postgres", file=sys.stderr)
            return 2
    print(" ".join(["command:", sys.executable, "-m", "bench.accounting.run", *sys.argv[1:]]))
    print(f"machine: {machine()}\nplan: {plan}")
    print(f"cometgate imported from {Path(cometgate.__file__).parent}")
    print(f"load average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-accounting-") as tmp:
        workdir = Path(tmp)
        phases: dict[tuple[str, str, str], Phase] = {}
        names = ["sqlite"] if args.skip_postgres else ["sqlite", "postgres"]
        mock = services.start_mock(workdir)
        services.set_mock_timing(mock, latency_ms=0, chunks=plan.chunks,
                                 interval_ms=plan.interval_ms)
        made: list[Backend] = []
        try:
            made.append(run_async(backends.sqlite_backend(workdir)))
            if not args.skip_postgres:
                made.append(run_async(backends.postgres_backend()))
            print("\n1. latency at a fixed rate, accounting off and on", flush=True)
            for backend in made:
                latency_part(plan, workdir, mock, backend, phases, gateway.MODES)
            missed = any("MISSED" in v and "added" in v for v in report.verdicts(phases, {}))
            if args.profile == "always" or (args.profile == "auto" and missed):
                for backend in made:
                    profile_gateway(plan, workdir, mock, backend)
        finally:
            for backend in made:
                run_async(backends.remove(backend))
            services.stop(mock)
        print("\n2. UsageWriter alone", flush=True)
        writers = run_writers(writer_jobs(plan, not args.skip_postgres), workdir,
                              plan.writer_seconds, args.profile)
    print(f"\nload average at end: {load_average()}\n")
    print(f"1. Latency through cometgate at {plan.rate.per_second:.0f} req/s open loop, "
          f"{plan.rounds} x {plan.rate.seconds:.0f} s per cell, fast mock (0 ms, stream "
          f"{plan.chunks} events {plan.interval_ms:g} ms apart); ms; on ÷ off:\n")
    print(report.latency_table(phases, names, list(SCENARIO_OF)))
    print("\n2. UsageWriter, records committed per second, batch sizes (rows per commit):\n")
    print(report.writer_table(writers))
    print("\n" + "\n".join(report.verdicts(phases, writers)))
    problems = [r for r in writers.values() if r["rows_stored"] != r["acknowledged"]]
    failed = [k for k, p in phases.items() if p.failures]
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
