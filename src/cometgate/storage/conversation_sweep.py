"""The periodic sweep that removes expired stored conversations from disk.

Expired turns are already invisible to every read (conversations); the sweep only frees the
space, so a missed round costs nothing but disk. It runs once at start, then every interval;
a failing round is logged and the next one tries again. Several replicas may sweep the same
database: deleting what another replica already deleted is harmless.
"""

from __future__ import annotations

import logging

from cometgate.storage.conversations import ConversationStore
from cometgate.storage.periodic import Periodic

logger = logging.getLogger(__name__)


class ConversationSweep:
    def __init__(self, store: ConversationStore | None, interval_seconds: float) -> None:
        self._store = store
        self._periodic = Periodic("conversation-sweep", self.sweep_once, interval_seconds)

    def start(self) -> None:
        if self._store is not None:
            self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.aclose()

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
