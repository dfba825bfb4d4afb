"""The three measurements, each run strictly one request at a time except the last.

Invariant: the direct llama.cpp process and the gateway's worker never generate at the same
time (the machine has two cores and each uses both); every call below is awaited before the
next starts. Both processes stay loaded throughout, idle when not called.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from concurrency import ConcurrentRun, concurrent_streams
from figures import median, rate
from probes import GatewayClient, Timing, gemini_body, worker_body, worker_stream
from processes import DirectLlama, Gateway, cpu_seconds

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
SEED = 42


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int  # interleaved direct/gateway rounds for throughput
    max_tokens: int
    ttft_runs: int
    ttft_max_tokens: int
    concurrency: int
    concurrent_max_tokens: int
    timeout: float  # per request, seconds


FULL = Plan(rounds=5, max_tokens=128, ttft_runs=20, ttft_max_tokens=4, concurrency=16,
            concurrent_max_tokens=32, timeout=600.0)
QUICK = Plan(rounds=2, max_tokens=32, ttft_runs=3, ttft_max_tokens=2, concurrency=16,
             concurrent_max_tokens=8, timeout=180.0)


@dataclass
class Bench:
    direct: DirectLlama
    gateway: Gateway
    client: httpx.AsyncClient
    plan: Plan
    problems: list[str] = field(default_factory=list)

    @property
    def gemini(self) -> GatewayClient:
        return GatewayClient(self.client, self.gateway.base_url, self.gateway.key,
                             self.gateway.worker.model_name)

    def direct_job(self, max_tokens: int, *, stream: bool) -> dict[str, Any]:
        job = {"prompt": PROMPT, "max_tokens": max_tokens, "seed": SEED, "stream": stream}
        return self.direct.run(job, self.plan.timeout)


def progress(message: str) -> None:
    """Signs of life on stderr; the report itself goes to stdout."""
    print(f"  … {message} (load {load_average()})", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- 1. generated tokens/s -------------------------------------------------------------------


CPU_PHASES = ("direct", "gateway", "direct stream", "gateway stream")


@dataclass
class Throughput:
    direct: list[dict[str, Any]] = field(default_factory=list)
    direct_stream: list[dict[str, Any]] = field(default_factory=list)
    gateway: list[Timing] = field(default_factory=list)
    gateway_stream: list[Timing] = field(default_factory=list)
    load: tuple[str, str] = ("", "")
    # Per kind of run (a CPU_PHASES entry), the CPU seconds each process ("direct", "worker",
    # "gateway") used while those runs went on.
    cpu: dict[str, dict[str, float]] = field(
        default_factory=lambda: {phase: {} for phase in CPU_PHASES})

    @property
    def tokens(self) -> int | None:
        counts = {run["tokens"] for run in self.direct}
        return counts.pop() if len(counts) == 1 else None

    def direct_rate(self) -> float | None:
        return median([rate(run["tokens"], run["wall"]) for run in self.direct])

    def direct_stream_rates(self) -> tuple[float | None, float | None]:
        tokens = self.tokens
        spans = [rate(tokens - 1 if tokens else None, run["first_to_last"])
                 for run in self.direct_stream]
        overall = [rate(tokens, run["wall"]) for run in self.direct_stream]
        return median(spans), median(overall)

    def gateway_rate(self) -> float | None:
        return median([rate(run.tokens, run.wall) for run in self.gateway])

    def gateway_stream_rates(self) -> tuple[float | None, float | None]:
        spans = [rate(run.tokens - 1 if run.tokens else None, run.first_to_last)
                 for run in self.gateway_stream]
        overall = [rate(run.tokens, run.wall) for run in self.gateway_stream]
        return median(spans), median(overall)


async def measure_throughput(bench: Bench) -> Throughput:
    """Rounds of: direct, gateway (non-stream), direct, gateway (stream)."""
    result = Throughput()
    before = load_average()
    body = gemini_body(PROMPT, bench.plan.max_tokens, SEED)
    meter = _CpuMeter(bench)
    for round_number in range(1, bench.plan.rounds + 1):
        progress(f"throughput round {round_number}/{bench.plan.rounds}")
        with meter.into(result.cpu["direct"]):
            result.direct.append(bench.direct_job(bench.plan.max_tokens, stream=False))
        with meter.into(result.cpu["gateway"]):
            result.gateway.append(await bench.gemini.generate(body))
        with meter.into(result.cpu["direct stream"]):
            result.direct_stream.append(bench.direct_job(bench.plan.max_tokens, stream=True))
        with meter.into(result.cpu["gateway stream"]):
            result.gateway_stream.append(await bench.gemini.stream(body))
    result.load = (before, load_average())
    _check_same_generation(bench, result)
    return result


class _CpuMeter:
    """Adds the CPU time each benchmark process used during a block to a running total."""

    def __init__(self, bench: Bench) -> None:
        self._pids = {"direct": bench.direct.pid, "worker": bench.gateway.worker.pid,
                      "gateway": bench.gateway.pid}

    @contextlib.contextmanager
    def into(self, totals: dict[str, float]) -> Iterator[None]:
        before = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        yield
        for name, pid in self._pids.items():
            totals[name] = totals.get(name, 0.0) + cpu_seconds(pid) - before[name]


def _check_same_generation(bench: Bench, result: Throughput) -> None:
    """Greedy decoding of one prompt must give one text and one token count everywhere;
    otherwise the rates would not compare like with like."""
    reference = result.direct[0]
    texts = {run["text"] for run in result.direct + result.direct_stream}
    texts |= {run.text for run in result.gateway + result.gateway_stream}
    counts = {run["tokens"] for run in result.direct}
    counts |= {run.tokens for run in result.gateway + result.gateway_stream}
    prompts = {run["prompt_tokens"] for run in result.direct}
    prompts |= {run.prompt_tokens for run in result.gateway + result.gateway_stream}
    if len(texts) != 1:
        bench.problems.append(f"throughput: {len(texts)} different texts were generated")
    if len(counts) != 1:
        bench.problems.append(f"throughput: generated token counts differ: {sorted(counts)}")
    if len(prompts) != 1:
        bench.problems.append(f"throughput: prompt token counts differ: {prompts}")
    if reference["tokens"] < bench.plan.max_tokens:
        bench.problems.append(f"throughput: generation ended early ({reference['tokens']} "
                              f"of {bench.plan.max_tokens} tokens)")


# --- 2. time to first token ------------------------------------------------------------------


@dataclass
class FirstToken:
    direct: list[float | None] = field(default_factory=list)
    worker: list[float | None] = field(default_factory=list)
    gateway: list[float | None] = field(default_factory=list)
    load: tuple[str, str] = ("", "")

    def paired_added(self) -> list[float | None]:
        """Per run, gateway TTFT minus the worker's TTFT measured next to it."""
        return [None if g is None or w is None else g - w
                for g, w in zip(self.gateway, self.worker, strict=True)]


async def measure_first_token(bench: Bench) -> FirstToken:
    """N runs of the three sources, rotating their order so none always runs first."""
    result = FirstToken()
    before = load_average()
    tokens = bench.plan.ttft_max_tokens
    gateway_request = gemini_body(PROMPT, tokens, SEED)
    worker_request = worker_body(bench.gateway.worker.model_name, PROMPT, tokens, SEED)
    for run in range(bench.plan.ttft_runs):
        progress(f"TTFT run {run + 1}/{bench.plan.ttft_runs}")
        for source in _rotated(("direct", "worker", "gateway"), run):
            if source == "direct":
                result.direct.append(bench.direct_job(tokens, stream=True)["ttft"])
            elif source == "worker":
                port = bench.gateway.worker.port
                result.worker.append((await worker_stream(bench.client, port,
                                                          worker_request)).ttft)
            else:
                result.gateway.append((await bench.gemini.stream(gateway_request)).ttft)
    result.load = (before, load_average())
    if None in result.direct + result.worker + result.gateway:
        bench.problems.append("ttft: some stream produced no text")
    return result


def _rotated(items: tuple[str, ...], shift: int) -> tuple[str, ...]:
    shift %= len(items)
    return items[shift:] + items[:shift]


# --- 3. concurrency and memory ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Concurrency:
    run: ConcurrentRun
    load: tuple[str, str]


async def measure_concurrency(bench: Bench) -> Concurrency:
    before = load_average()
    progress(f"{bench.plan.concurrency} concurrent streams")
    body = gemini_body(PROMPT, bench.plan.concurrent_max_tokens, SEED)
    run = await concurrent_streams(bench.gemini, bench.gateway.pid, body,
                                   bench.plan.concurrency, bench.plan.timeout)
    bench.problems.extend(f"concurrency: {failure}" for failure in run.failures)
    if any(timing.tokens != bench.plan.concurrent_max_tokens for timing in run.timings):
        counts = sorted({timing.tokens or 0 for timing in run.timings})
        bench.problems.append(f"concurrency: generated token counts {counts}")
    return Concurrency(run, (before, load_average()))
