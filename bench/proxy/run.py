"""Gateway overhead, side by side in one run: direct to a mock upstream, through cometgate,
through LiteLLM. Never two systems at once: each is started, measured on every scenario, and
stopped before the next; a direct block runs right before each gateway block, as its baseline.

    .venv/bin/python -m bench.proxy.run                 # full run (about 10 minutes)
    .venv/bin/python -m bench.proxy.run --quick         # smoke run (about 2 minutes)
    .venv/bin/python -m bench.proxy.run --skip-litellm --profile
    .venv/bin/python -m bench.proxy.run --quick --skip-litellm --floor \
        --scenarios passthrough,stream
    .venv/bin/python -m bench.proxy.run --skip-litellm --floor --rate 200 \
        --scenarios passthrough       # the added p50 at 200 req/s

`--floor` adds, between the first direct block and cometgate, the two floor systems of
`floor_app.py` (uvicorn-only, then the thinnest forwarder) on the pass-through scenarios, and a
second direct block at the end even without LiteLLM (how far the machine drifted meanwhile).

Linux only (/proc), 127.0.0.1 only; every child is stopped on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
from bench.proxy import figures, litellm_env, profile, services
from bench.proxy.measure import Measured, Plan, measure, run_async
from bench.proxy.open_loop import Target, one
from bench.proxy.procstat import load_average, rss_mb
from bench.proxy.scenarios import SCENARIOS, Scenario

QUICK = Plan(count=120, warmup=20, saturation_seconds=3)


def preflight(skip_litellm: bool) -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get update && apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "update"], check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=600)
    if not skip_litellm:
        litellm_env.ensure_installed()


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return (f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs ({cpu}); "
            f"Python {platform.python_version()}; {wrk.splitlines()[0] if wrk else 'wrk ?'}")


def probe(target: Target, scenario: Scenario, system: str, chunks: int) -> None:
    """One request before measuring: it must succeed and look like the scenario's answer."""
    sample = run_async(one(target))
    gemini_out = not (system.startswith("direct") and scenario.translate)
    marker = b'"candidates"' if gemini_out else b'"choices"'
    if sample.status != 200 or marker not in sample.body:
        raise RuntimeError(f"{system}/{scenario.name}: status {sample.status}, "
                           f"body {sample.body[:300]!r}")
    if scenario.stream and len(sample.events) < chunks:
        raise RuntimeError(f"{system}/{scenario.name}: {len(sample.events)} events, "
                           f"expected ≥ {chunks}")


def run_block(plan: Plan, mock: services.Service, system: str, pid: int,
              targets: dict[str, Target], workdir: Path, profiling: bool) -> list[Measured]:
    results = []
    services.set_mock_timing(mock, latency_ms=plan.latency_ms, chunks=plan.chunks,
                             interval_ms=plan.interval_ms)
    for scenario in SCENARIOS:
        if scenario.name not in targets:
            continue
        probe(targets[scenario.name], scenario, system, plan.chunks)
        load = load_average()
        out = workdir / f"profile-{system}-{scenario.name}.txt" if profiling else None
        measured = measure(plan, mock, system, pid, scenario.name, targets[scenario.name],
                           load, out)
        ok = sum(s.status == 200 for s in measured.samples)
        errors = collections.Counter(s.error for s in measured.samples if s.status != 200)
        print(f"  {system:9} {scenario.name:16} fixed-rate ok {ok}/{len(measured.samples)}, "
              f"saturation {measured.sat_rps:.0f} req/s "
              f"(load {load})" + (f"; failures: {dict(errors)}" if errors else ""), flush=True)
        if out is not None:
            print(profile.hotspots(out), flush=True)
        results.append(measured)
    return results


def gateway_block(plan: Plan, mock: services.Service, workdir: Path, name: str,
                  start: Callable[[], tuple[services.Service, str]],
                  target: Callable[[Scenario, int, str], Target], wanted: set[str],
                  profiling: bool) -> list[Measured]:
    service, key = start()
    try:
        print(f"{name}: pid {service.pid}, port {service.port}, idle RSS "
              f"{rss_mb(service.pid):.0f} MB", flush=True)
        targets = {s.name: target(s, service.port, key) for s in SCENARIOS if s.name in wanted}
        return run_block(plan, mock, name, service.pid, targets, workdir, profiling)
    finally:
        services.stop(service)


def direct_block(plan: Plan, mock: services.Service, workdir: Path, wanted: set[str],
                 label: str = "direct") -> list[Measured]:
    targets = {s.name: s.direct(mock.port) for s in SCENARIOS if s.name in wanted}
    return run_block(plan, mock, label, mock.pid, targets, workdir, False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy cometgate during saturation; print hotspots")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floor apps (uvicorn-only, thinnest forwarder)")
    parser.add_argument("--json", type=Path, help="also write the summaries here")
    parser.add_argument("--rate", type=float,
                        help="requests per second of the fixed-rate phase (default: the plan's)")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.rate:
        plan = replace(plan, rate=args.rate)
    wanted = set(args.scenarios.split(","))
    preflight(args.skip_litellm)
    if args.profile and not profile.available():
        print("py-spy not found in .venv: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    services.install_cleanup()
    print(" ".join(["command:", sys.executable, "-m", "bench.proxy.run", *sys.argv[1:]]))
    print(f"machine: {machine()}")
    if not args.skip_litellm:
        print(f"litellm {litellm_env.version()} (bench/.venv-litellm)")
    print(f"plan: {plan}\nload average at start: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        workdir = Path(tmp)
        mock = services.start_mock(workdir)
        results = direct_block(plan, mock, workdir, wanted)
        floors = floor_blocks(plan, mock, workdir, wanted, args.profile) if args.floor else []
        cg = gateway_block(
            plan, mock, workdir, "cometgate", lambda: services.start_cometgate(workdir, mock),
            lambda s, port, key: s.cometgate(port, key), wanted, args.profile)
        rows = report_rows(plan, results, [*floors, *cg], None)
        if not args.skip_litellm or args.floor:
            base_ll = direct_block(plan, mock, workdir, wanted, "direct-2")
            ll = [] if args.skip_litellm else gateway_block(
                plan, mock, workdir, "litellm",
                lambda: (litellm_env.start_litellm(workdir, mock), litellm_env.MASTER_KEY),
                lambda s, port, key: s.litellm(port, key), wanted, False)
            rows = report_rows(plan, results, [*floors, *cg], (base_ll, ll))
        services.stop(mock)
    print(f"\nload average at end: {load_average()}\n")
    order = [s.name for s in SCENARIOS]
    rows.sort(key=lambda r: order.index(r[0].scenario))  # stable: block order within each
    print(figures.table(rows))
    cometgate = {r[0].scenario: r[0] for r in rows if r[0].system == "cometgate"}
    litellm = {r[0].scenario: r[0] for r in rows if r[0].system == "litellm"}
    bases = {r[0].scenario: r[1] for r in rows if r[0].system == "cometgate"}
    print("\n" + "\n".join(figures.verdicts(cometgate, bases, litellm)))
    if args.floor:
        print("\n" + "\n".join(floor_lines(rows)))
    if args.json:
        args.json.write_bytes(orjson.dumps([r[0] for r in rows], option=orjson.OPT_INDENT_2))
    return 0


def floor_blocks(plan: Plan, mock: services.Service, workdir: Path, wanted: set[str],
                 profiling: bool) -> list[Measured]:
    """uvicorn-only, then the forwarding floor, on the pass-through scenarios asked for."""
    passing = {s.name for s in SCENARIOS if not s.translate} & wanted
    results: list[Measured] = []
    for mode in ("uvicorn-only", "floor"):
        results += gateway_block(plan, mock, workdir, mode, floor_starter(workdir, mock, mode),
                                 lambda s, port, _key: s.floor(port), passing, profiling)
    return results


def floor_starter(workdir: Path, mock: services.Service,
                  mode: str) -> Callable[[], tuple[services.Service, str]]:
    return lambda: (services.start_floor(workdir, mock, mode), "")  # no key: nothing checks it


Row = tuple[figures.Summary, figures.Summary, figures.Summary | None]


def floor_lines(rows: list[Row]) -> list[str]:
    """Per scenario, what each system adds to direct, and cometgate's excess over the floor."""
    out = ["added to direct   p50 ms  p99 ms  1st event p50 ms  CPU ms/req 40/s  CPU ms/req sat"]
    by_scenario: dict[str, dict[str, Row]] = collections.defaultdict(dict)
    for row in rows:
        by_scenario[row[0].scenario][row[0].system] = row
    for scenario, systems in by_scenario.items():
        if "floor" not in systems:
            continue
        for name in ("uvicorn-only", "floor", "cometgate"):
            if name in systems:
                s, base, _ = systems[name]
                first = s.first_p50 - base.first_p50 if s.events_p50 > 1 else float("nan")
                out.append(f"{scenario:11} {name:12} {s.p50 - base.p50:+7.2f} "
                           f"{s.p99 - base.p99:+7.2f} {first:+17.2f} {s.cpu_fixed_ms:16.2f} "
                           f"{s.cpu_sat_ms:15.2f}")
        if "cometgate" in systems:
            cg, fl = systems["cometgate"][0], systems["floor"][0]
            out.append(f"{scenario:11} cometgate - floor: p50 {cg.p50 - fl.p50:+.2f} ms, "
                       f"CPU at saturation {cg.cpu_sat_ms - fl.cpu_sat_ms:+.2f} ms/req")
            out.append(f"{scenario:11} cometgate / floor at saturation: CPU per request "
                       f"{cg.cpu_sat_ms / fl.cpu_sat_ms:.1f}x, p99 {cg.sat_p99:.2f} / "
                       f"{fl.sat_p99:.2f} ms = {cg.sat_p99 / fl.sat_p99:.1f}x")
        if "direct-2" in systems and "direct" in systems:
            again, first_run = systems["direct-2"][0], systems["direct"][0]
            out.append(f"{scenario:11} drift, direct-2 - direct: p50 "
                       f"{again.p50 - first_run.p50:+.2f} ms, p99 {again.p99 - first_run.p99:+.2f}"
                       " ms")
    return out


def report_rows(plan: Plan, direct: list[Measured], systems: list[Measured],
                litellm: tuple[list[Measured], list[Measured]] | None) -> list[Row]:
    """`systems` are compared with `direct`; LiteLLM with its own direct block, run just
    before it."""
    def summary(m: Measured) -> figures.Summary:
        return figures.summarise(m, plan.chunks)

    base = {m.scenario: summary(m) for m in direct}
    ll = {m.scenario: summary(m) for m in litellm[1]} if litellm else {}
    base_ll = {m.scenario: summary(m) for m in litellm[0]} if litellm else {}
    rows: list[Row] = []
    for m in direct:
        rows.append((base[m.scenario], base[m.scenario], None))
    for m in systems:
        rows.append((summary(m), base[m.scenario], ll.get(m.scenario)))
    rows.extend((s, s, None) for s in base_ll.values())
    for scenario, s in ll.items():
        rows.append((s, base_ll[scenario], None))
    return rows


if __name__ == "__main__":
    sys.exit(main())
