"""Part 1: latency of a request through the gateway at a fixed rate, accounting on and off.

Open loop (bench.proxy.open_loop): requests leave on a fixed timetable whatever the earlier
ones are doing, so a slower path shows as latency and queueing, not as a lower rate. Latency is
from writing the request to the last byte of the answer, so for a stream it includes the usage
record, which is committed before the last byte goes out.

A phase also takes the CPU time the gateway process used, per request: on a machine shared
with other work, CPU time moves far less than wall time, and the difference on - off is what
the accounting path costs in the gateway itself (PostgreSQL's and Redis's own work is in their
processes, not in this figure).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.proxy.figures import percentile
from bench.proxy.measure import run_async, settle
from bench.proxy.open_loop import Sample, Target, fixed_rate, one
from bench.proxy.procstat import cpu_seconds, load_average


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    seconds: float      # measured, per round
    warmup_s: float     # sent before each measured part, not counted

    @property
    def count(self) -> int:
        return round(self.per_second * self.seconds)

    @property
    def warmup(self) -> int:
        return round(self.per_second * self.warmup_s)


@dataclass(slots=True)
class Phase:
    """Every sample of one (backend, scenario, mode) over all rounds."""

    samples: list[Sample] = field(default_factory=list)
    cpu_s: float = 0.0          # gateway CPU seconds over the measured requests
    round_p50s: list[float] = field(default_factory=list)
    round_p99s: list[float] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)

    @property
    def good(self) -> list[float]:
        return [s.latency * 1000 for s in self.samples if s.status == 200]

    @property
    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            if s.status != 200:
                out[s.error or f"HTTP {s.status}"] = out.get(s.error, 0) + 1
        return out

    def p(self, q: float) -> float:
        return percentile(self.good, q)

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_s / max(1, len(self.samples))


def probe(target: Target, stream: bool) -> None:
    """One request before measuring: it must succeed and carry the mock's answer."""
    sample = run_async(one(target))
    if sample.status != 200 or b'"candidates"' not in sample.body:
        raise RuntimeError(f"probe {target.path}: status {sample.status}, "
                           f"body {sample.body[:300]!r}")
    if stream and not sample.events:
        raise RuntimeError(f"probe {target.path}: no events in the stream")


def run_round(target: Target, gateway_pid: int, rate: Rate, phase: Phase) -> None:
    """One round at the fixed rate, appended to `phase`."""
    settle(gateway_pid)
    phase.loads.append(load_average())
    before = cpu_seconds(gateway_pid)
    samples = run_async(fixed_rate(target, rate.per_second, rate.count, rate.warmup))
    used = cpu_seconds(gateway_pid) - before
    # The warm-up's CPU time is in `used`; count it out in proportion.
    phase.cpu_s += used * rate.count / (rate.count + rate.warmup)
    phase.samples.extend(samples)
    latencies = [s.latency * 1000 for s in samples if s.status == 200]
    phase.round_p50s.append(percentile(latencies, 50))
    phase.round_p99s.append(percentile(latencies, 99))


def median_round_delta(on: list[float], off: list[float]) -> float:
    """Median over rounds of on - off. Each round measures off and on back to back, so a load
    spike from other work on the machine moves one round's pair, not the median."""
    return statistics.median(a - b for a, b in zip(on, off, strict=True))
