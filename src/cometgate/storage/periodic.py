"""A round of background work run once at start, then every interval, until closed.

The sweeps (expired files, conversations, cached contents, old usage records) share this
loop. A round handles its own failures (it logs and returns); the loop only keeps time, so a
failed round never stops the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


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
