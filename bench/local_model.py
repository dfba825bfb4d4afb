"""The local model through the gateway, against llama.cpp called directly, in one run.

    .venv/bin/python bench/local_model.py [--quick]

Starts `cometgate serve` (which starts its llama.cpp worker) and a separate process that calls
`llama_cpp.Llama` directly on the same GGUF, then measures, one request at a time:
1. generated tokens/s, direct vs gateway (generateContent and streamGenerateContent?alt=sse);
2. time to first token: gateway vs the worker's own OpenAI stream vs llama_cpp direct;
3. the gateway process's RSS idle and at peak during concurrent streams.
Everything listens on 127.0.0.1 only; every child process is stopped on exit, Ctrl-C included.
Exit status: 0 when every run produced what was asked (targets may still be missed), 1 when a
run failed or the two sides did not generate the same tokens, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from processes import (
    BenchSetupError,
    DirectLlama,
    Gateway,
    cmdline,
    rss_kib,
    start_gateway,
    stop,
)
from report import first_token_report, memory_report, throughput_report
from scenarios import (
    FULL,
    QUICK,
    Bench,
    Plan,
    load_average,
    measure_concurrency,
    measure_first_token,
    measure_throughput,
)

BENCH_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 300.0  # loading the model on a busy 2-core machine can take a while


def parse_args(argv: Sequence[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, for a smoke test")
    parser.add_argument("--rounds", type=int, help="throughput rounds (default 5; quick 2)")
    parser.add_argument("--ttft-runs", type=int, help="TTFT runs (default 20; quick 3)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temporary directory with the processes' logs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        plan = replace(plan, rounds=max(1, args.rounds))
    if args.ttft_runs is not None:
        plan = replace(plan, ttft_runs=max(1, args.ttft_runs))
    return plan, args


def machine_facts() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    import llama_cpp

    return (f"machine: nproc {os.cpu_count()}, {cpu}; Python {platform.python_version()}, "
            f"llama-cpp-python {llama_cpp.__version__}; load average {load_average()}")


def _stop_on_sigterm() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so the `finally` blocks stop the children."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, interrupt)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="cometgate-bench-"))
        return
    with tempfile.TemporaryDirectory(prefix="cometgate-bench-") as path:
        yield Path(path)


@contextlib.contextmanager
def running_gateway(directory: Path, log: IO[bytes]) -> Iterator[Gateway]:
    cometgate = Path(sys.executable).parent / "cometgate"
    gateway = start_gateway(cometgate, directory / "data", log, STARTUP_TIMEOUT)
    try:
        yield gateway
    finally:
        stop(gateway.process)
        stop_leftover(gateway.worker.pid)


def stop_leftover(pid: int) -> None:
    """The gateway stops its worker on SIGTERM; this covers a gateway that failed to. The
    command line is checked first so that a recycled pid is never signalled."""
    with contextlib.suppress(OSError):
        if "cometgate.worker" in cmdline(pid):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_direct(plan: Plan, log: IO[bytes]) -> Iterator[DirectLlama]:
    from cometgate.bundled_model import bundled_gguf_path

    direct = DirectLlama(Path(sys.executable), BENCH_DIR / "direct_llama.py",
                         bundled_gguf_path(), threads=2, context_size=8192, log=log,
                         timeout=STARTUP_TIMEOUT)
    try:
        yield direct
    finally:
        direct.close()


async def run(plan: Plan, gateway: Gateway, direct: DirectLlama, idle_kib: int) -> int:
    timeout = httpx.Timeout(plan.timeout, connect=10.0)
    limits = httpx.Limits(max_connections=plan.concurrency + 4)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        bench = Bench(direct, gateway, client, plan)
        await warm_up(bench)
        warm_kib = rss_kib(gateway.pid)
        print(throughput_report(await measure_throughput(bench)), end="\n\n", flush=True)
        print(first_token_report(await measure_first_token(bench)), end="\n\n", flush=True)
        concurrency = await measure_concurrency(bench)
        print(memory_report(idle_kib, warm_kib, concurrency), end="\n\n", flush=True)
    for problem in bench.problems:
        print(f"PROBLEM: {problem}")
    return 1 if bench.problems else 0


async def warm_up(bench: Bench) -> None:
    """One short call down every path, so no measured run pays for a first-use cost."""
    from probes import gemini_body, worker_body, worker_stream
    from scenarios import PROMPT, SEED

    bench.direct_job(2, stream=False)
    bench.direct_job(2, stream=True)
    await bench.gemini.generate(gemini_body(PROMPT, 2, SEED))
    await bench.gemini.stream(gemini_body(PROMPT, 2, SEED))
    model = bench.gateway.worker.model_name
    await worker_stream(bench.client, bench.gateway.worker.port,
                        worker_body(model, PROMPT, 2, SEED))


def main(argv: Sequence[str] | None = None) -> int:
    plan, args = parse_args(argv)
    _stop_on_sigterm()
    command = shlex.join([sys.executable, *sys.argv])
    started = datetime.datetime.now().astimezone()
    print(f"command: {command}\nstarted: {started:%Y-%m-%d %H:%M:%S %Z}")
    print(machine_facts())
    print(f"plan: {plan}", end="\n\n", flush=True)
    try:
        with workspace(args.keep_logs) as directory, open(directory / "processes.log", "wb") as log:
            if args.keep_logs:
                print(f"logs: {directory / 'processes.log'}")
            with running_gateway(directory, log) as gateway, running_direct(plan, log) as direct:
                idle_kib = rss_kib(gateway.pid)
                print(f"gateway pid {gateway.pid} on {gateway.base_url}, worker pid "
                      f"{gateway.worker.pid} on port {gateway.worker.port}; direct llama.cpp "
                      f"pid {direct.pid} (loaded in {direct.load_seconds:.2f} s)", end="\n\n")
                status = asyncio.run(run(plan, gateway, direct, idle_kib))
    except BenchSetupError as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; child processes stopped", file=sys.stderr)
        return 130
    elapsed = datetime.datetime.now().astimezone() - started
    print(f"finished in {elapsed.total_seconds():.0f} s; load average {load_average()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
