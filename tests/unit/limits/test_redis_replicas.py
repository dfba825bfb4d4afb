"""Two `RedisLimiter`s on one Redis, as two gateway replicas: counts are shared exactly."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
import redis.asyncio
from tests.unit.limits.conftest import T0, UsageLog, delete_prefix, redis_url

from cometgate.errors import BudgetExhausted, RateLimited
from cometgate.limits import create_limiter
from cometgate.limits.limiter import Lease
from cometgate.limits.policy import Limits
from cometgate.limits.redis import RedisLimiter, from_nanos, to_nanos

KEY = 42


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RedisLimiter, RedisLimiter, str]]:
    url, prefix = redis_url(), f"cg-test-{secrets.token_hex(6)}"
    log = UsageLog()
    pair = (RedisLimiter(url, log, prefix=prefix), RedisLimiter(url, log, prefix=prefix))
    yield pair[0], pair[1], prefix
    await delete_prefix(url, prefix)
    for limiter in pair:
        await limiter.aclose()


async def race(
    pair: tuple[RedisLimiter, RedisLimiter], limits: Limits, count: int, cost: str = "0"
) -> list[Lease]:
    """`count` acquires at once, alternating between the replicas; the admitted leases."""
    answers = await asyncio.gather(
        *(
            pair[i % 2].acquire(KEY, limits, tokens=10, cost=Decimal(cost), now=T0)
            for i in range(count)
        ),
        return_exceptions=True,
    )
    refused = [a for a in answers if isinstance(a, RateLimited | BudgetExhausted)]
    leases = [a for a in answers if isinstance(a, Lease)]
    assert len(refused) + len(leases) == count, answers
    return leases


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (Limits(rpm=37), 37),
        (Limits(rpd=23), 23),
        (Limits(tpm=555), 55),
        (Limits(max_concurrent=9), 9),
    ],
)
async def test_replicas_share_each_limit_exactly_under_concurrent_load(
    replicas: tuple[RedisLimiter, RedisLimiter, str], limits: Limits, expected: int
) -> None:
    one, two, _ = replicas
    leases = await race((one, two), limits, 120)
    assert len(leases) == expected
    assert len({lease.lease_id for lease in leases}) == expected
    for replica in (one, two):
        state = await replica.state(KEY, limits, T0)
        assert (state.requests_this_minute, state.in_flight) == (expected, expected)


async def test_replicas_never_reserve_beyond_the_budget_and_share_settles(
    replicas: tuple[RedisLimiter, RedisLimiter, str],
) -> None:
    one, two, _ = replicas
    limits = Limits(budget_total=Decimal("5"))
    leases = await race((one, two), limits, 60, cost="0.5")
    assert len(leases) == 10
    # Each replica settles the other's leases: the ledger is shared, not per process.
    await asyncio.gather(
        *(
            (two if i % 2 == 0 else one).settle(lease, tokens=0, cost=Decimal("0.1"), now=T0)
            for i, lease in enumerate(leases)
        )
    )
    state = await one.state(KEY, limits, T0)
    assert (state.spent_total, state.reserved, state.in_flight) == (1, 0, 0)
    assert len(await race((one, two), limits, 60, cost="0.5")) == 8


async def test_a_crashed_replicas_leases_lapse_for_the_survivor(
    replicas: tuple[RedisLimiter, RedisLimiter, str],
) -> None:
    crashed, survivor, _ = replicas
    limits = Limits(max_concurrent=2, budget_total=Decimal("3"))
    for _ in range(2):
        await crashed.acquire(KEY, limits, tokens=0, cost=Decimal(1), now=T0)
    with pytest.raises(RateLimited):
        await survivor.acquire(KEY, limits, tokens=0, cost=Decimal(1), now=T0)
    await crashed.aclose()  # never settles
    after = T0 + timedelta(minutes=15)
    for _ in range(2):
        await survivor.acquire(KEY, limits, tokens=0, cost=Decimal("1.5"), now=after)


async def test_keys_carry_the_key_hash_tag_and_window_keys_expire(
    replicas: tuple[RedisLimiter, RedisLimiter, str],
) -> None:
    one, _, prefix = replicas
    limits = Limits(rpm=5, budget_period="month", budget_period_amount=Decimal(1))
    await one.acquire(KEY, limits, tokens=3, cost=Decimal("0.25"), now=T0)
    client = redis.asyncio.Redis.from_url(redis_url(), decode_responses=True)
    try:
        names = {name async for name in client.scan_iter(match=f"{prefix}:*")}
        base = f"{prefix}:{{{KEY}}}"
        assert names == {
            f"{base}:{part}"
            for part in (
                "leases", "lease_costs", "reserved", "rpm:202503141230", "tpm:202503141230",
                "rpd:20250314", "spent:month:20250301",
            )
        }
        for name in names:
            assert await client.ttl(name) > 0, name
        assert await client.get(f"{base}:reserved") == "250000000"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [("0", 0), ("1", 10**9), ("0.000000001", 1), ("0.0000000001", 1), ("12.3456789", 12345678900)],
)
def test_money_is_stored_as_nano_usd_rounded_up(amount: str, nanos: int) -> None:
    assert to_nanos(Decimal(amount)) == nanos
    assert from_nanos(nanos) >= Decimal(amount)
    assert from_nanos(str(nanos).encode()) == from_nanos(nanos)


async def test_create_limiter_shares_limits_through_redis_given_a_url() -> None:
    limiter = create_limiter(redis_url(), UsageLog())
    try:
        assert isinstance(limiter, RedisLimiter)
    finally:
        await limiter.aclose()
