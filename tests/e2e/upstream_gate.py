"""An ASGI layer in front of a fake upstream that counts requests in flight and can hold them.

Tests of concurrency limits need requests that stay in flight at the upstream until the test
lets them go, and a count of how many were ever in flight at once; the fakes answer at once
and count nothing, so this layer adds both without changing what the fake says.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

WAIT_STEP_SECONDS = 0.01
WAIT_LIMIT_SECONDS = 20.0


class UpstreamGate:
    """`close()` holds every request that arrives until `open()`; `most` is the highest number
    of requests ever in flight at once, `served` the number that went through to the fake.
    `delay_seconds` holds every request that long before the fake answers, so that concurrent
    requests overlap at the upstream."""

    def __init__(self, app: ASGIApp, *, delay_seconds: float = 0.0) -> None:
        self.app = app
        self.delay_seconds = delay_seconds
        self._open = asyncio.Event()
        self._open.set()
        self.in_flight = 0
        self.waiting = 0
        self.most = 0
        self.served = 0

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            if not self._open.is_set():
                self.waiting += 1
                try:
                    await self._open.wait()
                finally:
                    self.waiting -= 1
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            self.served += 1
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def wait_for_waiting(self, count: int) -> None:
        """Until `count` requests are held here; fails after WAIT_LIMIT_SECONDS."""
        for _ in range(int(WAIT_LIMIT_SECONDS / WAIT_STEP_SECONDS)):
            if self.waiting >= count:
                return
            await asyncio.sleep(WAIT_STEP_SECONDS)
        raise AssertionError(f"{count} requests never reached the upstream ({self.waiting} did)")
