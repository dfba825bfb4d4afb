"""The periodic sweep that removes expired stored conversations from disk.

Expired turns are already invisible to every read (conversations); the sweep only frees the
space, so a missed round costs nothing but disk. It runs once at start, then every interval;
a failing round is logged and the next one tries again. Several replicas may sweep the same
database: deleting what another replica already deleted is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cometgate.storage.conversations import ConversationStore

logger = logging.getLogger(__name__)


class ConversationSweep:
    def __init__(self, store: ConversationStore | None, interval_seconds: float) -> None:
        self._store = store
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._store is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="conversation-sweep")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep_once(self) -> int:
        """One round now; how many turns it removed (0 when storage is off or it failed)."""
        if self._store is None:
            return 0
        try:
            removed = await self._store.purge_expired()
        except Exception:  # the next round retries; reads never show expired turns anyway
            logger.exception("sweeping expired conversations failed")
            return 0
        if removed:
            logger.info("removed %d expired stored conversation turn(s)", removed)
        return removed

    async def _run(self) -> None:
        while True:
            await self.sweep_once()
            await asyncio.sleep(self._interval)
