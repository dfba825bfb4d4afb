"""The limiter the parent of `serve --workers N` serves: several clients (the workers) share
one count, refusals reach them as they would in one process, and a gone parent is said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from tests.unit.limits.conftest import T0, UsageLog

from cometgate.errors import BudgetExhausted, RateLimited
from cometgate.limits.limiter import Lease
from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.policy import Limits
from cometgate.limits.shared import LimiterServer, SharedLimiter, SharedLimiterUnavailable

KEY = 3


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LimiterServer]:
    served = LimiterServer(MemoryLimiter(UsageLog()), tmp_path / "limits.sock")
    await served.start()
    yield served
    await served.aclose()


@pytest.fixture
async def workers(server: LimiterServer, tmp_path: Path) -> AsyncIterator[list[SharedLimiter]]:
    clients = [SharedLimiter(tmp_path / "limits.sock") for _ in range(3)]
    yield clients
    for client in clients:
        await client.aclose()


async def test_requests_per_minute_are_exact_across_clients(workers: list[SharedLimiter]) -> None:
    limits = Limits(rpm=7)
    answers = await asyncio.gather(
        *(workers[n % 3].acquire(KEY, limits, tokens=1, cost=Decimal(0), now=T0)
          for n in range(20)), return_exceptions=True)
    leases = [a for a in answers if isinstance(a, Lease)]
    refusals = [a for a in answers if isinstance(a, RateLimited)]
    assert (len(leases), len(refusals)) == (7, 13)
    assert refusals[0].message == (
        "Quota exceeded for requests per minute (rpm=7) on this API key.")
    assert refusals[0].retry_after == 45.0  # T0 is 45 s before the minute ends
    state = await workers[2].state(KEY, limits, T0)
    assert (state.requests_this_minute, state.in_flight) == (7, 7)


async def test_a_settle_on_one_client_frees_and_spends_for_the_others(
    workers: list[SharedLimiter],
) -> None:
    limits = Limits(max_concurrent=1, budget_total=Decimal("1.00"))
    lease = await workers[0].acquire(KEY, limits, tokens=5, cost=Decimal("0.60"), now=T0)
    with pytest.raises(RateLimited, match=r"max_concurrent=1"):
        await workers[1].acquire(KEY, limits, tokens=5, cost=Decimal("0.10"), now=T0)
    await workers[0].settle(lease, tokens=5, cost=Decimal("0.95"), now=T0)
    with pytest.raises(BudgetExhausted) as refused:
        await workers[1].acquire(KEY, limits, tokens=5, cost=Decimal("0.10"), now=T0)
    assert refused.value.retry_after is None  # a total budget never renews
    assert (await workers[2].state(KEY, limits, T0)).spent_total == Decimal("0.95")


async def test_a_call_the_limiter_does_not_have_is_refused(
    server: LimiterServer, tmp_path: Path
) -> None:
    client = SharedLimiter(tmp_path / "limits.sock")
    with pytest.raises(ValueError, match="the limiter has no call 'aclose'"):
        await client._call("aclose", (), {})
    await client.aclose()


async def test_bad_inputs_fail_in_the_caller_as_they_would_in_process(
    workers: list[SharedLimiter],
) -> None:
    with pytest.raises(ValueError, match="tokens must be a non-negative int"):
        await workers[0].acquire(KEY, Limits(), tokens=-1, cost=Decimal(0), now=T0)


async def test_a_missing_parent_is_said(tmp_path: Path) -> None:
    client = SharedLimiter(tmp_path / "nobody.sock")
    with pytest.raises(SharedLimiterUnavailable, match=r"the shared limiter at .* is unreachable"):
        await client.acquire(KEY, Limits(), tokens=0, cost=Decimal(0), now=T0)
    await client.aclose()


async def test_calls_in_flight_fail_when_the_parent_goes(
    server: LimiterServer, workers: list[SharedLimiter]
) -> None:
    await workers[0].state(KEY, Limits(), T0)  # connected
    await server.aclose()
    with pytest.raises(SharedLimiterUnavailable):
        await workers[0].acquire(KEY, Limits(rpm=5), tokens=0, cost=Decimal(0), now=T0)


async def synced(told: list[SharedLimiter]) -> None:
    """A call answered on a connection: what it told before has been counted."""
    for worker in told:
        await worker.state(KEY, Limits(), T0)


async def test_a_key_without_limits_is_counted_without_a_round_trip(
    workers: list[SharedLimiter],
) -> None:
    unlimited = Limits()
    leases = [await workers[n % 2].acquire(KEY, unlimited, tokens=4, cost=Decimal("0.5"),
                                           now=T0) for n in range(3)]
    assert len({lease.lease_id for lease in leases}) == 3  # made by the workers themselves
    await synced(workers[:2])
    state = await workers[2].state(KEY, unlimited, T0)
    assert (state.requests_this_minute, state.tokens_this_minute, state.in_flight) == (3, 12, 3)
    assert state.reserved == Decimal("1.5")
    await workers[0].renew(leases, T0)  # the parent knows them by the workers' ids
    for n, lease in enumerate(leases):
        await workers[n % 2].settle(lease, tokens=6, cost=Decimal("0.25"), now=T0)
    await synced(workers[:2])
    state = await workers[2].state(KEY, unlimited, T0)
    assert (state.in_flight, state.reserved, state.spent_total) == (0, 0, Decimal("0.75"))
    assert state.tokens_this_minute == 18


async def test_a_key_without_limits_still_refuses_bad_inputs_at_once(
    workers: list[SharedLimiter],
) -> None:
    with pytest.raises(ValueError, match="cost must be a non-negative finite Decimal"):
        await workers[0].acquire(KEY, Limits(), tokens=1, cost=Decimal("NaN"), now=T0)
