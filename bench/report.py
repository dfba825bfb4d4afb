"""The printed report: one table per measurement, ratios against the same run's baseline."""

from __future__ import annotations

import itertools

from figures import Target, median, milliseconds, number, rate, ratio, table
from scenarios import CPU_PHASES, Concurrency, FirstToken, Throughput

THROUGHPUT_TARGET = Target(0.90, at_least=True)  # gateway ÷ direct tokens/s
ADDED_TTFT_TARGET = Target(5.0, at_least=False)  # ms the gateway adds to the first token
RSS_TARGET = Target(150.0, at_least=False)  # MB, gateway process only


def throughput_report(result: Throughput) -> str:
    gateway_span, gateway_overall = result.gateway_stream_rates()
    direct_span, direct_overall = result.direct_stream_rates()
    rows = [
        _rate_row("non-stream (tokens / wall)", result.direct_rate(), result.gateway_rate()),
        _rate_row("stream, first→last token", direct_span, gateway_span),
        _rate_row("stream, overall (tokens / wall)", direct_overall, gateway_overall),
    ]
    header = ["generated tokens/s (median)", "llama_cpp direct", "gateway", "gateway÷direct",
              f"target {THROUGHPUT_TARGET.describe()}"]
    walls = [
        ("direct non-stream", median([run["wall"] for run in result.direct])),
        ("gateway non-stream", median([run.wall for run in result.gateway])),
        ("direct stream", median([run["wall"] for run in result.direct_stream])),
        ("gateway stream", median([run.wall for run in result.gateway_stream])),
    ]
    spread = ", ".join(f"{name} {number(wall, 3)} s" for name, wall in walls)
    return "\n".join([
        f"1. Throughput: {len(result.direct)} interleaved rounds, {result.tokens} generated "
        f"tokens per run (load {result.load[0]} → {result.load[1]})",
        table(header, rows),
        f"median wall per run: {spread}",
        _cpu_table(result),
    ])


def _cpu_table(result: Throughput) -> str:
    """CPU time per generated token, per process and kind of run. Less sensitive than wall
    time to a shared machine, though llama.cpp threads that spin-wait under contention still
    inflate it; the serve process's own figure is the gateway's cost."""
    generated = len(result.direct) * (result.tokens or 0)  # runs of each kind, times tokens per run
    rows = []
    for name, label in (("direct", "llama_cpp direct process"), ("worker", "gateway's worker"),
                        ("gateway", "gateway (serve) process")):
        rows.append([label, *(_per_token(result.cpu[phase].get(name), generated)
                              for phase in CPU_PHASES)])
    shares = []
    for mode, suffix in (("non-stream", ""), ("stream", " stream")):
        direct = result.cpu[f"direct{suffix}"].get("direct")
        gateway = result.cpu[f"gateway{suffix}"]
        path = gateway.get("worker", 0.0) + gateway.get("gateway", 0.0)
        shares.append(f"{mode} {number(ratio(path, direct), 3)}")
    header = ["CPU ms per generated token, during:", *(f"{phase} runs" for phase in CPU_PHASES)]
    return "\n".join([
        table(header, rows),
        f"CPU per token, gateway path (worker + serve) ÷ direct: {', '.join(shares)}",
    ])


def _per_token(seconds: float | None, tokens: int) -> str:
    return milliseconds(ratio(seconds, tokens), 2)


def _rate_row(name: str, direct: float | None, gateway: float | None) -> list[str]:
    share = ratio(gateway, direct)
    return [name, number(direct), number(gateway), number(share, 3),
            THROUGHPUT_TARGET.verdict(share)]


def first_token_report(result: FirstToken) -> str:
    direct, worker, gateway = (median(result.direct), median(result.worker),
                               median(result.gateway))
    paired = median(result.paired_added())
    added = None if paired is None else paired * 1000
    rows = [
        ["llama_cpp direct (in-process stream)", milliseconds(direct), _spread(result.direct)],
        ["worker's own OpenAI stream (HTTP)", milliseconds(worker), _spread(result.worker)],
        ["gateway streamGenerateContent (HTTP)", milliseconds(gateway), _spread(result.gateway)],
    ]
    gap = None if gateway is None or worker is None else gateway - worker
    return "\n".join([
        f"2. Time to first token: {len(result.gateway)} runs each, order rotated "
        f"(load {result.load[0]} → {result.load[1]})",
        table(["TTFT", "median ms", "min … max ms"], rows),
        f"added by the gateway (median of paired gateway - worker): {number(added, 2)} ms; "
        f"difference of medians: {milliseconds(gap, 2)} ms; target "
        f"{ADDED_TTFT_TARGET.describe()} ms: {ADDED_TTFT_TARGET.verdict(added)}",
        f"gateway vs llama_cpp direct: {milliseconds(_minus(gateway, direct), 2)} ms more, "
        f"ratio {number(ratio(gateway, direct), 2)}",
    ])


def _spread(values: list[float | None]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    return f"{milliseconds(min(present))} … {milliseconds(max(present))}"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def memory_report(idle_kib: int, warm_kib: int, concurrency: Concurrency) -> str:
    run = concurrency.run
    peak_mb = run.peak_rss_kib / 1024
    lines = [
        f"3. Gateway memory and {len(run.timings) + len(run.failures)} concurrent streams "
        f"(load {concurrency.load[0]} → {concurrency.load[1]})",
        f"gateway RSS (serve process only): idle after startup {idle_kib / 1024:.1f} MB, "
        f"after warm-up {warm_kib / 1024:.1f} MB, peak during the streams {peak_mb:.1f} MB "
        f"({run.rss_samples} samples, 50 ms apart); target {RSS_TARGET.describe()} MB: "
        f"{RSS_TARGET.verdict(peak_mb)}",
        f"succeeded: {len(run.timings)} of {len(run.timings) + len(run.failures)}",
        *run.failures,
    ]
    if run.timings:
        lines += _concurrency_figures(concurrency)
    return "\n".join(lines)


def _concurrency_figures(concurrency: Concurrency) -> list[str]:
    run = concurrency.run
    origin = min(timing.started for timing in run.timings)
    ordered = sorted(run.timings, key=lambda timing: timing.ttft or 0.0)
    rows = []
    for place, timing in enumerate(ordered, 1):
        ttft = timing.ttft or 0.0
        rows.append([str(place), milliseconds(timing.started - origin), milliseconds(ttft, 0),
                     milliseconds(timing.first_to_last, 0), milliseconds(timing.wall, 0),
                     str(timing.tokens)])
    header = ["#", "sent at ms", "TTFT ms", "first→last ms", "latency ms", "tokens"]
    tokens = sum(timing.tokens or 0 for timing in run.timings)
    steps = [b.ttft - a.ttft for a, b in itertools.pairwise(ordered)
             if a.ttft is not None and b.ttft is not None]
    spans = [timing.first_to_last for timing in run.timings]
    walls = [timing.wall for timing in run.timings]
    return [
        table(header, rows),
        f"aggregate: {tokens} tokens in {run.wall:.2f} s = {number(rate(tokens, run.wall))} "
        "generated tokens/s",
        f"latency: min {milliseconds(min(walls), 0)} ms, median {milliseconds(median(walls), 0)} "
        f"ms, max {milliseconds(max(walls), 0)} ms",
        f"TTFT step between consecutive requests: median {milliseconds(median(steps), 0)} ms "
        f"(one request's own first→last: median {milliseconds(median(spans), 0)} ms)",
    ]
