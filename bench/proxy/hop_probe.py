"""What one more process on the path costs before any work: the round trip of 64 bytes over
loopback to an echo process (uvloop, raw protocol), paced at the benchmark's 40 per second and
back to back.

A forwarder turns direct's one client ↔ upstream round trip into two; paced, both processes are
asleep when a message arrives, so each round trip pays two wake-ups on a cold core. The paced
figure less the back-to-back one is that price, whatever the forwarder's language.

    .venv/bin/python -m bench.proxy.hop_probe            # about 15 s, 127.0.0.1 only
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import cast

from bench.proxy.figures import percentile
from bench.proxy.measure import run_async
from bench.proxy.procstat import load_average
from bench.proxy.services import ROOT, free_port

MESSAGE = b"x" * 64
WARMUP = 50


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_server(port: int, lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port)
    await asyncio.sleep(lifetime_s)  # bounded: the probe never outlives its client for long
    server.close()


async def round_trips(port: int, paced: int, rate: float, hot: int) -> dict[str, list[float]]:
    """Microseconds per round trip: `paced` at `rate` per second, then `hot` back to back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def once() -> float:
        start = time.perf_counter()
        writer.write(MESSAGE)
        await reader.readexactly(len(MESSAGE))
        return (time.perf_counter() - start) * 1e6

    try:
        for _ in range(WARMUP):
            await once()
        spaced = []
        for _ in range(paced):
            await asyncio.sleep(1 / rate)
            spaced.append(await once())
        return {f"paced {rate:g}/s": spaced, "back to back": [await once() for _ in range(hot)]}
    finally:
        writer.close()


def connect_when_ready(port: int, paced: int, rate: float,
                       hot: int) -> dict[str, list[float]]:
    deadline = time.monotonic() + 10
    while True:
        try:
            return cast(dict[str, list[float]], run_async(round_trips(port, paced, rate, hot)))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paced", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--hot", type=int, default=2000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the echo child
    args = parser.parse_args()
    if args.serve is not None:
        run_async(echo_server(args.serve, lifetime_s=args.paced / args.rate + 30))
        return 0
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.proxy.hop_probe", "--serve", str(port),
         "--paced", str(args.paced), "--rate", str(args.rate)], cwd=ROOT)
    try:
        print(f"load average {load_average()}")
        for name, micros in connect_when_ready(port, args.paced, args.rate, args.hot).items():
            print(f"{name:13} round trip µs: p50 {percentile(micros, 50):.0f}  "
                  f"p90 {percentile(micros, 90):.0f}  p99 {percentile(micros, 99):.0f}")
        print(f"load average {load_average()}")
    finally:
        child.terminate()
        child.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
