"""The authenticator's memory of key lookups, built so that the hot path never waits on the
database once a key is known, and the database sees one lookup per key at a time.

- A fresh entry answers at once.
- A stale entry (expired less than `ttl` ago) also answers at once, while one task re-reads
  the key behind it: without that, every request in flight when an entry expires would read
  the key together and queue behind the usage writer on the database (a stampede every `ttl`
  seconds under load). An older entry is read again before it answers, so a change to a key
  (a revocation) is seen within `ttl` and one read while requests keep coming, and at once
  after a quiet spell; with `ttl` 0 every request reads the key.
- A missing entry is read once however many requests ask for it together; they share the
  answer. A caller that is cancelled while waiting does not cancel the shared read.

A failed refresh keeps the stale entry (and is retried by the next request after it); a failed
first read fails every request waiting on it, as a lone read would have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

V = TypeVar("V")

log = logging.getLogger("cometgate.auth")

# Bounds memory against floods of random keys; past it the memory starts over.
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float


class KeyCache(Generic[V]):
    def __init__(self, load: Callable[[str], Coroutine[Any, Any, V]], *, ttl: float,
                 clock: Callable[[], float]) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry[V]] = {}
        self._reads: dict[str, asyncio.Task[V]] = {}  # one read in flight per digest

    async def get(self, digest: str, key: str) -> V:
        entry = self._entries.get(digest)
        now = self._clock()
        if entry is None or entry.expires + self._ttl <= now:
            return await asyncio.shield(self._read(digest, key))
        if entry.expires <= now:
            self._read(digest, key)  # behind this answer; the task is kept in _reads
        return entry.value

    def _read(self, digest: str, key: str) -> asyncio.Task[V]:
        read = self._reads.get(digest)
        if read is None:
            read = asyncio.get_running_loop().create_task(self._load(key))
            self._reads[digest] = read
            read.add_done_callback(lambda done: self._settle(digest, done))
        return read

    def _settle(self, digest: str, read: asyncio.Task[V]) -> None:
        del self._reads[digest]
        if read.cancelled():
            return
        error = read.exception()
        if error is not None:
            if digest in self._entries:  # a refresh: the stale entry stays, and says so
                log.warning("re-reading a key failed; its cached answer stays: %r", error)
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = _Entry(read.result(), self._clock() + self._ttl)
