"""The periodic sweep that removes expired files and their bytes.

Expired files are already invisible to every read; the sweep frees their space. It runs once at
start, then every interval; a failing round is logged and the next one tries again. Replicas
may sweep the same database: removing what another removed is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cometgate.storage.file_store.store import FileStore

logger = logging.getLogger(__name__)


class FileSweep:
    def __init__(self, store: FileStore, interval_seconds: float) -> None:
        self._store = store
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="file-sweep")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep_once(self) -> int:
        try:
            removed = await self._store.purge_expired()
        except Exception:  # the next round retries; reads never show expired files anyway
            logger.exception("sweeping expired files failed")
            return 0
        if removed:
            logger.info("removed %d expired file(s)", removed)
        return removed

    async def _run(self) -> None:
        while True:
            await self.sweep_once()
            await asyncio.sleep(self._interval)
