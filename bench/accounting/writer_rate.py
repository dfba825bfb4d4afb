"""Part 2: how fast UsageWriter commits usage records, with the storage classes alone.

Run by `run.py` in a process of its own (so that its CPU time is its own and py-spy can sample
it); prints one JSON object on stdout:

    python -m bench.accounting.writer_rate --url sqlite+aiosqlite:///…/bench.db \
        --callers 256 --seconds 10 --lone 300

Two phases on one freshly migrated database:
- lone: one caller, one record at a time; `record()` latency is then one whole commit: the
  least a request that waits for its record pays for it, in time and in CPU.
- sustained: `callers` tasks, each awaiting `record()` in a loop; records/s over `seconds`
  after a one-second warm-up, `record()` latency, and the size of every batch the writer
  committed in that window. Each record is a distinct, realistic row built like the gateway
  builds it (the construction, with its validation, is part of the caller's cost).

At the end the rows in `usage_records` must equal the records whose `record()` returned: a
writer that acknowledged a record it did not store would make the rate meaningless.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from bench.proxy.measure import run_async
from sqlalchemy import func, select

from cometgate.storage.database import Database, open_database
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_writer import UsageWriter, _Waiter

WARMUP_S = 1.0


class CountingWriter(UsageWriter):
    """UsageWriter that notes the size and end time of every batch it commits.

    Overrides the private `_insert`: the writer has no public hook, and a measurement must
    not change what it measures, so this only observes the batch and calls the original."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.batches: list[tuple[float, int]] = []  # (perf_counter at commit, rows)

    async def _insert(self, batch: Sequence[_Waiter]) -> None:
        await super()._insert(batch)
        self.batches.append((time.perf_counter(), len(batch)))


_serial = itertools.count()
_PREFIX = os.urandom(4).hex()


def new_record() -> UsageRecord:
    n = next(_serial)
    prompt, output = 27 + n % 200, 61 + n % 500
    return UsageRecord(
        request_id=f"{_PREFIX}{n:024x}", key_id=1 + n % 8, model="gem", provider="mockgem",
        upstream_model="gemini-2.5-flash", dialect="gemini", stream=n % 2 == 0, status=200,
        failure_class=None, prompt_tokens=prompt, output_tokens=output, thoughts_tokens=0,
        cached_tokens=0,
        cost_usd=(prompt * Decimal("0.30") + output * Decimal("2.50")).scaleb(-6),
        latency_ms=12.5, ttfb_ms=3.25, created_at=datetime.now(UTC),
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(latencies_ms, 50), "p99_ms": percentile(latencies_ms, 99),
            "mean_ms": sum(latencies_ms) / max(1, len(latencies_ms))}


async def lone_phase(writer: UsageWriter, count: int) -> dict[str, float]:
    latencies = []
    cpu_begin = time.process_time()
    for _ in range(count):
        record = new_record()
        start = time.perf_counter()
        await writer.record(record)
        latencies.append((time.perf_counter() - start) * 1000)
    cpu_us = 1e6 * (time.process_time() - cpu_begin) / max(1, count)
    return {"records": count, "cpu_us_per_record": cpu_us, **latency_summary(latencies)}


async def sustained_phase(writer: CountingWriter, callers: int,
                          seconds: float) -> dict[str, float]:
    done: list[tuple[float, float]] = []  # (end perf_counter, latency ms)
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            record = new_record()
            start = time.perf_counter()
            await writer.record(record)
            end = time.perf_counter()
            done.append((end, (end - start) * 1000))

    tasks = [asyncio.create_task(caller()) for _ in range(callers)]
    await asyncio.sleep(WARMUP_S)
    begin, cpu_begin = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    end, cpu_end = time.perf_counter(), time.process_time()
    stop.set()
    await asyncio.gather(*tasks)
    window = [lat for t, lat in done if begin <= t < end]
    sizes = sorted(n for t, n in writer.batches if begin <= t < end)
    return {
        "callers": callers, "seconds": end - begin, "records": len(window),
        "records_per_s": len(window) / (end - begin),
        "cpu_us_per_record": 1e6 * (cpu_end - cpu_begin) / max(1, len(window)),
        "batches": len(sizes), "batch_mean": sum(sizes) / max(1, len(sizes)),
        "batch_p50": percentile([float(s) for s in sizes], 50),
        "batch_min": sizes[0] if sizes else 0, "batch_max": sizes[-1] if sizes else 0,
        **latency_summary(window), "acknowledged_total": len(done),
    }


async def measure(url: str, callers: int, seconds: float, lone: int) -> dict[str, object]:
    database = await open_database(url)
    writer = CountingWriter(database)
    writer.start()
    try:
        lone_figures = await lone_phase(writer, lone)
        sustained = await sustained_phase(writer, callers, seconds)
        await writer.aclose()
        async with database.engine.connect() as conn:
            stored = await conn.execute(select(func.count()).select_from(usage_records))
            rows = int(stored.scalar_one())
    finally:
        await writer.aclose()
        await database.aclose()
    return {"dialect": database.dialect_name, "lone": lone_figures, "sustained": sustained,
            "rows_stored": rows, "acknowledged": lone + int(sustained["acknowledged_total"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--callers", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lone", type=int, default=300)
    args = parser.parse_args()
    result = run_async(measure(args.url, args.callers, args.seconds, args.lone))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    return 0 if result["rows_stored"] == result["acknowledged"] else 1


if __name__ == "__main__":
    sys.exit(main())
