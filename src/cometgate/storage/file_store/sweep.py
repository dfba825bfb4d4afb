"""The periodic sweep that removes expired files and their bytes.

Expired files are already invisible to every read; the sweep frees their space. It runs once at
start, then every interval; a failing round is logged and the next one tries again. Replicas
may sweep the same database: removing what another removed is harmless.
"""

from __future__ import annotations

import logging

from cometgate.storage.file_store.store import FileStore
from cometgate.storage.periodic import Periodic

logger = logging.getLogger(__name__)


class FileSweep:
    def __init__(self, store: FileStore, interval_seconds: float) -> None:
        self._store = store
        self._periodic = Periodic("file-sweep", self.sweep_once, interval_seconds)

    def start(self) -> None:
        self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.aclose()

    async def sweep_once(self) -> int:
        try:
            removed = await self._store.purge_expired()
        except Exception:  # the next round retries; reads never show expired files anyway
            logger.exception("sweeping expired files failed")
            return 0
        if removed:
            logger.info("removed %d expired file(s)", removed)
        return removed
