"""Translation cost per inbound-upstream dialect pair (in process), and the OpenAI
pass-through's overhead ÷ direct (end to end, against the mock upstream), in one run.

    .venv/bin/python -m bench.dialects.run                 # full run (about 6 minutes, estimated)
    .venv/bin/python -m bench.dialects.run --quick         # smoke run (under 2 minutes)
    .venv/bin/python -m bench.dialects.run --json out.json --skip-end-to-end

Linux only (/proc), 127.0.0.1 only; the processes of part 2 are stopped on exit, Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from bench.dialects import end_to_end, pairs, report, stages, translation
from bench.proxy import services
from bench.proxy.procstat import load_average

QUICK = translation.Rounds(warmup=30, rounds=4, per_round=50)
FULL = translation.Rounds()


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool
    json: Path | None
    end_to_end: bool
    cometgate_src: Path | None


def options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--skip-end-to-end", action="store_true",
                        help="part 1 only (no processes, no wrk)")
    parser.add_argument("--cometgate-src", type=Path,
                        help="run the gateway of part 2 from this source tree (its src/ goes "
                             "first on PYTHONPATH), e.g. an exported commit")
    args = parser.parse_args()
    return Options(args.quick, args.json, not args.skip_end_to_end, args.cometgate_src)


def source_description(src: Path | None) -> str:
    if src is not None:
        return f"gateway from {src}"
    root = services.ROOT
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()
    return f"cometgate at {head or '?'}{' + uncommitted changes in src/' if dirty else ''}"


def header(opts: Options) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(" ".join(["command:", sys.executable, "-m", "bench.dialects.run", *sys.argv[1:]]))
    print(f"machine: {time.strftime('%Y-%m-%d %H:%M %Z')}; {os.cpu_count()} CPUs ({cpu}); "
          f"Python {platform.python_version()}; {source_description(opts.cometgate_src)}")
    print(f"load average at start: {load_average()}", flush=True)


def part_one(quick: bool) -> tuple[list[translation.Cell], list[stages.Stage]]:
    plan = QUICK if quick else FULL
    inbounds, upstreams = pairs.inbounds(), pairs.upstreams()
    differences = pairs.same_canonical_request(inbounds)
    if differences:
        raise RuntimeError("; ".join(differences))
    load = load_average()
    started = time.monotonic()
    cells = translation.run(inbounds, upstreams, plan)
    steps = stages.measure(inbounds, upstreams, plan.rounds * plan.per_round)
    print(f"\n1. Translation cost per request, in process ({plan}; "
          f"{time.monotonic() - started:.0f} s; load {load} → {load_average()})")
    print("floor = orjson.loads + orjson.dumps of the caller's request and the upstream's "
          "answer (each event's JSON for a stream); ÷floor = p50 ÷ floor p50\n")
    print(report.translation_table(cells) + "\n")
    print(report.stages_table(steps), flush=True)
    return cells, steps


def part_two(quick: bool) -> list[end_to_end.Row]:
    plan = end_to_end.QUICK if quick else end_to_end.FULL
    print(f"\n2. OpenAI pass-through ÷ direct, end to end against the mock upstream\nplan: {plan}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-dialects-") as tmp:
        rows = end_to_end.run(plan, Path(tmp))
    print(f"\nfixed rate {plan.rate:.0f} req/s (mock: first byte after {plan.latency_ms:.0f} ms, "
          f"{plan.chunks} events {plan.interval_ms:.0f} ms apart); saturation: wrk "
          f"-c{plan.connections} {plan.saturation_seconds} s, mock answering at once. "
          "CPU µs/req at saturation is the measured process's: the mock's for direct rows, "
          "cometgate's otherwise.\n")
    print(report.end_to_end_table(rows) + "\n")
    print("\n".join(report.ratio_lines(rows)), flush=True)
    return rows


def main() -> int:
    opts = options()
    if opts.cometgate_src is not None:
        # Inherited by the `cometgate` processes part 2 starts; part 1 runs in this process.
        os.environ["PYTHONPATH"] = str(opts.cometgate_src.resolve() / "src")
    services.install_cleanup()
    header(opts)
    cells, steps = part_one(opts.quick)
    rows = part_two(opts.quick) if opts.end_to_end else []
    print(f"\nload average at end: {load_average()}")
    if opts.json:
        document = {
            "translation": [{"caller": c.caller, "upstream": c.upstream, "kind": c.kind,
                             "passed_through_in_gateway": c.passed_through,
                             **report.cell_figures(c)} for c in cells],
            "stages": steps,
            "end_to_end": rows,
        }
        opts.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
