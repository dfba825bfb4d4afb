"""Runs `cometgate` under cProfile timed by the main thread's CPU clock, then writes the stats.

py-spy samples wall-clock stacks: on a busy 2-core machine a process preempted inside a socket
write (the loopback send wakes the receiver, which may take the CPU) is charged to that write.
Timing with `time.thread_time` counts only CPU the event-loop thread really used, so the
split between our code, Starlette, uvicorn and httpx is the CPU split. cProfile's own cost
inflates small functions; read the proportions, not the absolute times.

    .venv/bin/python -m bench.proxy.cpu_profile OUT.pstats serve --config … --port …
    (stop it with SIGINT or SIGTERM; uvicorn shuts down and the stats are written)
    .venv/bin/python -m bench.proxy.cpu_profile --show OUT.pstats
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time


def profile_cli(out: str, argv: list[str]) -> int:
    from cometgate.cli import main as cli_main

    profiler = cProfile.Profile(time.thread_time)
    try:
        status = profiler.runcall(cli_main, argv)
    finally:
        profiler.dump_stats(out)
    return int(status or 0)


def show(path: str, limit: int = 30) -> None:
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(r"cometgate|starlette|httpx|httpcore|uvicorn|anyio",
                                               limit)


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "--show":
        show(sys.argv[2])
        return 0
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    return profile_cli(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
