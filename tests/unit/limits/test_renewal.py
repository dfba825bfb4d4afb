"""The lease keeper: every live lease of the process renewed in one call, settled ones not."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from tests.unit.limits.conftest import T0, UsageLog

from cometgate.limits import LeaseKeeper, create_keeper
from cometgate.limits.limiter import Lease
from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.policy import Limits


class RecordingLimiter(MemoryLimiter):
    """A memory limiter that notes each renewal call and can be made to fail some."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(UsageLog())
        self.calls: list[list[str]] = []
        self.failures = failures
        self.renewed = asyncio.Event()

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        self.calls.append(sorted(lease.lease_id for lease in leases))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is away")
        await super().renew(leases, now)
        self.renewed.set()


async def _leases(limiter: MemoryLimiter, count: int) -> list[Lease]:
    return [
        await limiter.acquire(key, Limits(), tokens=0, cost=Decimal(0), now=T0)
        for key in range(count)
    ]


async def test_one_call_renews_every_live_lease_and_none_that_was_forgotten() -> None:
    limiter = RecordingLimiter()
    keeper = LeaseKeeper(limiter, timedelta(hours=1))  # only renew_now renews here
    leases = await _leases(limiter, 3)
    for lease in leases:
        keeper.track(lease)
    keeper.forget(leases[1])
    keeper.forget(leases[1])  # forgetting twice is harmless (settle is idempotent too)
    await keeper.renew_now()
    assert limiter.calls == [sorted([leases[0].lease_id, leases[2].lease_id])]
    assert keeper.live == 2
    await keeper.aclose()


async def test_nothing_to_renew_makes_no_call() -> None:
    limiter = RecordingLimiter()
    keeper = LeaseKeeper(limiter, timedelta(hours=1))
    await keeper.renew_now()
    assert limiter.calls == []


async def test_the_task_renews_on_its_interval_and_outlives_a_failed_renewal() -> None:
    limiter = RecordingLimiter(failures=1)
    keeper = LeaseKeeper(limiter, timedelta(milliseconds=5))
    (lease,) = await _leases(limiter, 1)
    keeper.track(lease)
    await asyncio.wait_for(limiter.renewed.wait(), timeout=10)
    assert len(limiter.calls) >= 2  # the first failed; a later one went through
    assert all(call == [lease.lease_id] for call in limiter.calls)
    await keeper.aclose()
    calls = len(limiter.calls)
    await asyncio.sleep(0.02)
    assert len(limiter.calls) == calls  # closed: no more renewals


def test_the_renewal_interval_is_a_third_of_the_lease_ttl_and_positive() -> None:
    limiter = MemoryLimiter(UsageLog())
    keeper = create_keeper(limiter, timedelta(seconds=30))
    assert keeper.interval == timedelta(seconds=10)
    with pytest.raises(ValueError, match="must be positive"):
        LeaseKeeper(limiter, timedelta(0))
