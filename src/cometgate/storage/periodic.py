"""A round of background work run once at start, then every interval, until closed.

The sweeps (expired files, conversations, cached contents, old usage records) share this
loop. A round handles its own failures (it logs and returns); the loop only keeps time, so a
failed round never stops the next one. The batch workers' loops, which can be woken early,
share `woken_rounds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("cometgate.background")


class Periodic:
    def __init__(self, name: str, round_: Callable[[], Awaitable[object]],
                 interval_seconds: float) -> None:
        self._name = name  # the task's name, seen in asyncio's debug output and dumps
        self._round = round_
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._round()
            await asyncio.sleep(self._interval)


async def woken_rounds(round_: Callable[[], Awaitable[object]], wake: asyncio.Event,
                       interval_seconds: float, what: str) -> None:
    """`round_` for ever: again `interval_seconds` after the last, or as soon as `wake` is
    set (new work arrived). A failed round (the database, say) is logged as `what` failing
    and tried again at the next one."""
    while True:
        try:
            await round_()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval_seconds)
        wake.clear()
