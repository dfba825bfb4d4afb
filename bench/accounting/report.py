"""The printed tables and verdicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.accounting.latency import Phase, median_round_delta

ADDED_P50_TARGET_MS = 0.3      # on SQLite with in-process limits
WRITE_RATE_TARGET = 5000.0     # records/s on SQLite


def _ratio(on: float, off: float) -> str:
    return f"{on / off:.2f}" if off > 0 else "—"


def latency_table(phases: Mapping[tuple[str, str, str], Phase], backends: list[str],
                  scenarios: list[str]) -> str:
    head = (f"{'backend':9} {'scenario':12} {'ok off/on':>11} | {'p50 off':>8} {'p50 on':>8} "
            f"{'+ms':>6} {'ratio':>5} | {'p99 off':>8} {'p99 on':>8} {'+ms':>6} {'ratio':>5} | "
            f"{'CPU µs/req off':>14} {'on':>6} {'+µs':>5} | {'median round +p50':>17} {'+p99':>7}")
    lines = [head, "-" * len(head)]
    rounds = []
    for backend in backends:
        for scenario in scenarios:
            off = phases.get((backend, scenario, "off"))
            on = phases.get((backend, scenario, "on"))
            if off is None or on is None:
                continue
            d50 = median_round_delta(on.round_p50s, off.round_p50s)
            d99 = median_round_delta(on.round_p99s, off.round_p99s)
            lines.append(
                f"{backend:9} {scenario:12} {len(off.good):>5}/{len(on.good):<5} | "
                f"{off.p(50):8.2f} {on.p(50):8.2f} {on.p(50) - off.p(50):+6.2f} "
                f"{_ratio(on.p(50), off.p(50)):>5} | "
                f"{off.p(99):8.2f} {on.p(99):8.2f} {on.p(99) - off.p(99):+6.2f} "
                f"{_ratio(on.p(99), off.p(99)):>5} | "
                f"{off.cpu_us_per_request:14.0f} {on.cpu_us_per_request:6.0f} "
                f"{on.cpu_us_per_request - off.cpu_us_per_request:+5.0f} | "
                f"{d50:+17.2f} {d99:+7.2f}")
            rounds.append(f"  {backend:9} {scenario:9} p50 off "
                          + " ".join(f"{p:.2f}" for p in off.round_p50s) + " | on "
                          + " ".join(f"{p:.2f}" for p in on.round_p50s))
            for mode, phase in (("off", off), ("on", on)):
                if phase.failures:
                    lines.append(f"    {mode}: FAILURES {phase.failures}")
    return "\n".join([*lines, "", "per-round p50 (ms), in round order:", *rounds])


def writer_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    head = (f"{'backend':22} {'callers':>7} {'records/s':>10} {'batches':>7} "
            f"{'batch mean/p50/min/max':>23} | {'record() p50':>12} {'p99 ms':>7} | "
            f"{'CPU µs/rec':>10} | {'lone commit p50':>15} {'p99 ms':>7} {'CPU µs':>7}")
    lines = [head, "-" * len(head)]
    for name, r in results.items():
        lone = r["lone"]
        for s in r["sustained"]:
            batch = (f"{s['batch_mean']:.0f}/{s['batch_p50']:.0f}/{s['batch_min']}/"
                     f"{s['batch_max']}")
            lines.append(
                f"{name:22} {s['callers']:>7} {s['records_per_s']:10.0f} {s['batches']:>7} "
                f"{batch:>23} | {s['p50_ms']:12.2f} {s['p99_ms']:7.2f} | "
                f"{s['cpu_us_per_record']:10.0f} | {lone['p50_ms']:15.2f} {lone['p99_ms']:7.2f} "
                f"{lone['cpu_us_per_record']:7.0f}")
        if r["rows_stored"] != r["acknowledged"]:
            lines.append(f"    PROBLEM: {r['acknowledged']} records acknowledged, "
                         f"{r['rows_stored']} rows stored")
    return "\n".join(lines)


def verdicts(phases: Mapping[tuple[str, str, str], Phase],
             writers: Mapping[str, Mapping[str, Any]]) -> list[str]:
    out = []
    off, on = phases.get(("sqlite", "generate", "off")), phases.get(("sqlite", "generate", "on"))
    if off is not None and on is not None:
        added = median_round_delta(on.round_p50s, off.round_p50s)
        met = "met" if added <= ADDED_P50_TARGET_MS else "MISSED"
        out.append(f"added p50, SQLite + in-process limits, generateContent: {added:+.2f} ms "
                   f"(median over rounds; pooled {on.p(50) - off.p(50):+.2f} ms; "
                   f"target ≤ {ADDED_P50_TARGET_MS} ms): {met}")
    sqlite = writers.get("sqlite")
    if sqlite is not None:
        best = max(s["records_per_s"] for s in sqlite["sustained"])
        met = "met" if best >= WRITE_RATE_TARGET else "MISSED"
        out.append(f"usage records/s, SQLite: {best:.0f} (target ≥ {WRITE_RATE_TARGET:.0f}): "
                   f"{met}")
    return out
