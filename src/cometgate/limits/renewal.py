"""Keeping a process's live leases alive, so that only a dead process's leases lapse.

A lease's TTL is short (policy.LEASE_TTL) so that a replica killed mid-request frees its
slots within seconds. A request may live far longer than that (a long stream), so while it
lives its lease is renewed: one task per process, waking every `interval`, renews every
lease this process holds in one call to the limiter (one pipelined round trip to Redis),
whatever the number of requests in flight — never one timer per request.

A renewal that fails (Redis unreachable for a moment) is logged and tried again at the next
wake-up; with RENEWALS_PER_TTL wake-ups per TTL, two may fail before a live lease lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from datetime import UTC, datetime, timedelta

from cometgate.limits.limiter import Lease, Limiter

log = logging.getLogger("cometgate.limits")


class LeaseKeeper:
    """`track` a lease when it is acquired, `forget` it when it is settled; in between it is
    renewed every `interval`. The task starts with the first tracked lease and stops at
    `aclose`."""

    def __init__(self, limiter: Limiter, interval: timedelta) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"the renewal interval must be positive, got {interval}")
        self._limiter = limiter
        self._interval = interval.total_seconds()
        self._live: dict[str, Lease] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self._interval)

    @property
    def live(self) -> int:
        return len(self._live)

    def track(self, lease: Lease) -> None:
        self._live[lease.lease_id] = lease
        if self._task is None or self._task.done():
            # An empty context: the task outlives the request that starts it, and must not
            # carry that request's context (its id in log lines) into every renewal.
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="cometgate-lease-renewal", context=contextvars.Context())

    def forget(self, lease: Lease) -> None:
        self._live.pop(lease.lease_id, None)

    async def renew_now(self) -> None:
        """One renewal of every live lease (what the task does on each wake-up)."""
        if self._live:
            await self._limiter.renew(list(self._live.values()), datetime.now(UTC))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.renew_now()
            except Exception:  # a lost renewal is retried next time; the loop must go on
                log.exception("renewing %d concurrency leases failed", len(self._live))
