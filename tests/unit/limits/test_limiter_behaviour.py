"""One behaviour table, run against the in-process limiter and the Redis one (see conftest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tests.unit.limits.conftest import T0, MakeLimiter, UsageLog

from cometgate.errors import BudgetExhausted, RateLimited
from cometgate.limits.limiter import Lease, Limiter
from cometgate.limits.policy import Limits

KEY = 7
NEXT_MINUTE = datetime(2025, 3, 14, 12, 31, tzinfo=UTC)
MIDNIGHT = datetime(2025, 3, 15, tzinfo=UTC)


async def take(
    limiter: Limiter,
    limits: Limits,
    *,
    tokens: int = 0,
    cost: str = "0",
    now: datetime = T0,
    key: int = KEY,
) -> Lease:
    return await limiter.acquire(key, limits, tokens=tokens, cost=Decimal(cost), now=now)


async def admitted(limiter: Limiter, limits: Limits, count: int, cost: str = "0") -> list[Lease]:
    """Try `count` acquires at once; the leases of those admitted."""
    answers = await asyncio.gather(
        *(take(limiter, limits, cost=cost) for _ in range(count)), return_exceptions=True
    )
    for answer in answers:
        if not isinstance(answer, Lease | RateLimited | BudgetExhausted):
            raise AssertionError(f"unexpected answer {answer!r}")
    return [answer for answer in answers if isinstance(answer, Lease)]


@pytest.mark.parametrize(
    ("limits", "field", "message", "retry_after", "later"),
    [
        (Limits(rpm=3), "rpm", "requests per minute (rpm=3)", 45.0, NEXT_MINUTE),
        (Limits(rpd=3), "rpd", "requests per day (rpd=3)", 41385.0, MIDNIGHT),
    ],
)
async def test_request_counts_refuse_exactly_at_the_limit_until_the_window_rolls(
    make_limiter: MakeLimiter,
    limits: Limits,
    field: str,
    message: str,
    retry_after: float,
    later: datetime,
) -> None:
    limiter = make_limiter()
    for _ in range(3):
        await take(limiter, limits)
    with pytest.raises(RateLimited) as refused:
        await take(limiter, limits)
    assert message in refused.value.message
    assert refused.value.retry_after == retry_after
    assert refused.value.http_status == 429
    assert refused.value.status == "RESOURCE_EXHAUSTED"
    state = await limiter.state(KEY, limits, T0)
    assert (state.requests_this_minute, state.requests_today) == (3, 3)  # refusals not counted
    await take(limiter, limits, now=later)


async def test_requests_per_minute_leave_the_day_count_running(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(rpm=2, rpd=3)
    await take(limiter, limits)
    await take(limiter, limits)
    await take(limiter, limits, now=NEXT_MINUTE)
    with pytest.raises(RateLimited, match=r"rpd=3"):
        await take(limiter, limits, now=NEXT_MINUTE)


async def test_tokens_per_minute_admit_up_to_the_limit_and_not_one_more(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    limits = Limits(tpm=100)
    await take(limiter, limits, tokens=60)
    await take(limiter, limits, tokens=40)
    with pytest.raises(RateLimited, match=r"tokens per minute \(tpm=100\)") as refused:
        await take(limiter, limits, tokens=1)
    assert refused.value.retry_after == 45.0
    await take(limiter, limits, tokens=100, now=NEXT_MINUTE)


async def test_a_prompt_larger_than_the_token_limit_says_it_can_never_pass(
    make_limiter: MakeLimiter,
) -> None:
    with pytest.raises(RateLimited, match=r"101 prompt tokens exceed .* cannot succeed"):
        await take(make_limiter(), Limits(tpm=100), tokens=101)


async def test_settle_counts_real_tokens_beyond_the_estimate(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(tpm=100)
    lease = await take(limiter, limits, tokens=10)
    await limiter.settle(lease, tokens=70, cost=Decimal(0), now=T0)
    assert (await limiter.state(KEY, limits, T0)).tokens_this_minute == 70
    await take(limiter, limits, tokens=30)
    with pytest.raises(RateLimited):
        await take(limiter, limits, tokens=1)


async def test_an_over_estimate_is_given_back_within_its_minute(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(tpm=100)
    lease = await take(limiter, limits, tokens=80)
    await limiter.settle(lease, tokens=20, cost=Decimal(0), now=T0)
    await take(limiter, limits, tokens=80)
    assert (await limiter.state(KEY, limits, T0)).remaining_tokens_this_minute == 0


async def test_tokens_settled_in_a_later_minute_count_in_that_minute(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    limits = Limits(tpm=100)
    lease = await take(limiter, limits, tokens=30)
    await limiter.settle(lease, tokens=90, cost=Decimal(0), now=NEXT_MINUTE)
    assert (await limiter.state(KEY, limits, NEXT_MINUTE)).tokens_this_minute == 60


async def test_concurrency_is_freed_by_settle(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(max_concurrent=2)
    first = await take(limiter, limits)
    await take(limiter, limits)
    with pytest.raises(RateLimited, match=r"max_concurrent=2") as refused:
        await take(limiter, limits)
    assert refused.value.retry_after == 1.0
    await limiter.settle(first, tokens=0, cost=Decimal(0), now=T0)
    await take(limiter, limits)
    assert (await limiter.state(KEY, limits, T0)).in_flight == 2


async def test_total_budget_counts_reservations_and_refuses_beyond_it(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    limits = Limits(budget_total=Decimal("10"))
    await take(limiter, limits, cost="4")
    await take(limiter, limits, cost="4")
    with pytest.raises(BudgetExhausted, match=r"total budget of 10 USD") as refused:
        await take(limiter, limits, cost="2.000001")
    assert refused.value.retry_after is None
    assert refused.value.http_status == 429
    await take(limiter, limits, cost="2")  # exactly the budget: admitted
    state = await limiter.state(KEY, limits, T0)
    assert (state.reserved, state.remaining_budget_total) == (Decimal(10), Decimal(0))


async def test_concurrent_worst_cases_never_overcommit_and_settles_release_the_rest(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    limits = Limits(budget_total=Decimal("10"))
    leases = await admitted(limiter, limits, 30, cost="1")
    assert len(leases) == 10
    for lease in leases:
        await limiter.settle(lease, tokens=0, cost=Decimal("0.25"), now=T0)
    state = await limiter.state(KEY, limits, T0)
    assert (state.spent_total, state.reserved, state.in_flight) == (Decimal("2.5"), 0, 0)
    assert len(await admitted(limiter, limits, 30, cost="1")) == 7  # 2.5 + 7 ≤ 10 < 2.5 + 8


async def test_period_budget_reads_the_period_spend_and_renews_with_the_period(
    make_limiter: MakeLimiter,
) -> None:
    yesterday, this_morning = T0 - timedelta(days=1), T0.replace(hour=1)
    log = UsageLog([(KEY, yesterday, Decimal("3")), (KEY, this_morning, Decimal("4"))])
    limiter = make_limiter(log)
    limits = Limits(budget_period="day", budget_period_amount=Decimal("5"))
    await take(limiter, limits, cost="1")
    with pytest.raises(BudgetExhausted, match=r"daily budget of 5 USD") as refused:
        await take(limiter, limits, cost="0.5")
    assert refused.value.retry_after == 41385.0  # to midnight UTC
    state = await limiter.state(KEY, limits, T0)
    assert (state.spent_period, state.reserved, state.remaining_budget_period) == (4, 1, 0)
    assert state.period_resets_at == MIDNIGHT
    await take(limiter, limits, cost="4", now=MIDNIGHT)  # the open lease still holds 1


async def test_monthly_budget_runs_to_the_first_of_the_next_month(
    make_limiter: MakeLimiter,
) -> None:
    log = UsageLog([(KEY, T0.replace(day=1), Decimal("9"))])
    limiter = make_limiter(log)
    limits = Limits(budget_period="month", budget_period_amount=Decimal("10"))
    lease = await take(limiter, limits, cost="1")
    await limiter.settle(lease, tokens=0, cost=Decimal("0.5"), now=T0)
    await take(limiter, limits, cost="0.5")
    with pytest.raises(BudgetExhausted, match=r"monthly budget") as refused:
        await take(limiter, limits, cost="0.000000001")
    april = datetime(2025, 4, 1, tzinfo=UTC)
    assert refused.value.retry_after == (april - T0).total_seconds()
    await take(limiter, limits, cost="10", now=april)


async def test_settle_is_idempotent(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(max_concurrent=5, tpm=1000, budget_total=Decimal("10"))
    lease = await take(limiter, limits, tokens=10, cost="2")
    await take(limiter, limits, tokens=10, cost="2")
    for _ in range(3):
        await limiter.settle(lease, tokens=50, cost=Decimal("1.5"), now=T0)
    state = await limiter.state(KEY, limits, T0)
    assert (state.in_flight, state.reserved, state.spent_total) == (1, 2, Decimal("1.5"))
    assert state.tokens_this_minute == 60


async def test_a_failed_request_settles_for_nothing(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(max_concurrent=1, budget_total=Decimal("1"))
    lease = await take(limiter, limits, cost="1")
    await limiter.settle(lease, tokens=0, cost=Decimal(0), now=T0)
    state = await limiter.state(KEY, limits, T0)
    assert (state.in_flight, state.reserved, state.spent_total) == (0, 0, 0)
    await take(limiter, limits, cost="1")


async def test_spend_survives_a_restart_and_is_read_once_per_key_and_period(
    make_limiter: MakeLimiter,
) -> None:
    log = UsageLog([(KEY, T0 - timedelta(days=40), Decimal("7")), (8, T0, Decimal("100"))])
    limiter = make_limiter(log)
    limits = Limits(budget_total=Decimal("10"))
    lease = await take(limiter, limits, cost="3")
    with pytest.raises(BudgetExhausted):
        await take(limiter, limits, cost="0.01")
    await limiter.settle(lease, tokens=0, cost=Decimal("2"), now=T0)
    await take(limiter, limits, cost="1")
    assert log.reads == [(KEY, None)]
    assert (await limiter.state(KEY, limits, T0)).spent_total == Decimal("9")
    assert log.reads == [(KEY, None)]


async def test_keys_are_counted_apart(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(rpm=1)
    await take(limiter, limits, key=1)
    await take(limiter, limits, key=2)
    with pytest.raises(RateLimited):
        await take(limiter, limits, key=1)


async def test_an_unsettled_lease_lapses_and_its_late_settle_counts_once(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(lease_ttl=timedelta(minutes=15))
    limits = Limits(max_concurrent=1, budget_total=Decimal("10"))
    lost = await take(limiter, limits, cost="6")
    with pytest.raises(RateLimited):
        await take(limiter, limits, cost="1", now=T0 + timedelta(minutes=14))
    later = T0 + timedelta(minutes=15)
    state = await limiter.state(KEY, limits, later)
    assert (state.in_flight, state.reserved) == (0, 0)
    for _ in range(2):
        await limiter.settle(lost, tokens=0, cost=Decimal("5"), now=later)
    assert (await limiter.state(KEY, limits, later)).spent_total == 5
    await take(limiter, limits, cost="5", now=later)


async def test_state_reports_limits_remaining_and_reset_times(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    limits = Limits(rpm=10, rpd=100, tpm=1000, max_concurrent=3)
    await take(limiter, limits, tokens=200, cost="0.5")
    state = await limiter.state(KEY, limits, T0)
    assert state.limits == limits
    assert (state.remaining_requests_this_minute, state.remaining_requests_today) == (9, 99)
    assert (state.remaining_tokens_this_minute, state.in_flight) == (800, 1)
    assert (state.reserved, state.spent_total, state.spent_period) == (Decimal("0.5"), 0, None)
    assert (state.minute_resets_at, state.day_resets_at) == (NEXT_MINUTE, MIDNIGHT)
    assert state.period_resets_at is None
    assert state.remaining_budget_total is None


async def test_unlimited_keys_are_counted_but_never_refused(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter()
    for _ in range(50):
        await take(limiter, Limits(), tokens=10**6, cost="1000")
    state = await limiter.state(KEY, Limits(), T0)
    assert (state.requests_this_minute, state.in_flight, state.reserved) == (50, 50, 50000)
    assert state.remaining_requests_this_minute is None


@pytest.mark.parametrize(
    ("tokens", "cost", "now"),
    [
        (-1, Decimal(0), T0),
        (1.5, Decimal(0), T0),
        (0, Decimal("-0.01"), T0),
        (0, Decimal("NaN"), T0),
        (0, 0.5, T0),
        (0, Decimal(0), datetime(2025, 3, 14, 12, 30)),  # naive: its zone would be a guess
    ],
)
async def test_bad_requests_are_refused_before_anything_is_counted(
    make_limiter: MakeLimiter, tokens: object, cost: object, now: datetime
) -> None:
    limiter = make_limiter()
    with pytest.raises(ValueError):
        await limiter.acquire(KEY, Limits(rpm=1), tokens=tokens, cost=cost, now=now)  # type: ignore[arg-type]
    await take(limiter, Limits(rpm=1))


async def test_a_lease_from_before_a_restart_settles_quietly(make_limiter: MakeLimiter) -> None:
    """In process, the restarted limiter never saw the lease; in Redis it is shared state."""
    limits = Limits(max_concurrent=1)
    lease = await take(make_limiter(), limits)
    restarted = make_limiter()
    await restarted.settle(lease, tokens=5, cost=Decimal(0), now=T0)
    assert (await restarted.state(KEY, limits, T0)).in_flight == 0
    await take(restarted, limits)


async def test_a_renewed_lease_outlives_its_first_ttl_and_keeps_its_slot(
    make_limiter: MakeLimiter,
) -> None:
    ttl = timedelta(seconds=30)
    limiter = make_limiter(lease_ttl=ttl)
    limits = Limits(max_concurrent=1, budget_total=Decimal("10"))
    long_request = await take(limiter, limits, cost="4")
    for renewal in range(1, 4):  # renewed every 20 s, for a minute: past its first TTL
        await limiter.renew([long_request], T0 + renewal * timedelta(seconds=20))
    past_first_ttl = T0 + timedelta(seconds=65)
    with pytest.raises(RateLimited):
        await take(limiter, limits, now=past_first_ttl)
    state = await limiter.state(KEY, limits, past_first_ttl)
    assert (state.in_flight, state.reserved) == (1, Decimal(4))
    await limiter.settle(long_request, tokens=0, cost=Decimal(1), now=past_first_ttl)
    await take(limiter, limits, now=past_first_ttl)


async def test_an_unrenewed_lease_lapses_after_one_ttl_and_a_late_renewal_does_not_revive_it(
    make_limiter: MakeLimiter,
) -> None:
    ttl = timedelta(seconds=30)
    limiter = make_limiter(lease_ttl=ttl)
    limits = Limits(max_concurrent=1)
    dead = await take(limiter, limits)
    with pytest.raises(RateLimited):
        await take(limiter, limits, now=T0 + ttl - timedelta(seconds=1))
    successor = await take(limiter, limits, now=T0 + ttl)
    await limiter.renew([dead, successor], T0 + ttl + timedelta(seconds=1))
    state = await limiter.state(KEY, limits, T0 + ttl + timedelta(seconds=1))
    assert state.in_flight == 1
    # The successor's renewal held: past its own first TTL it still has the slot.
    with pytest.raises(RateLimited):
        await take(limiter, limits, now=T0 + 2 * ttl + timedelta(seconds=0.5))


async def test_renewing_nothing_or_leases_of_unknown_keys_changes_nothing(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    await limiter.renew([], T0)
    stranger = Lease("0" * 32, 999, Limits(max_concurrent=1), 0, Decimal(0), T0)
    await limiter.renew([stranger], T0)
    assert (await limiter.state(999, Limits(max_concurrent=1), T0)).in_flight == 0


async def test_a_renewal_racing_a_settle_does_not_bring_the_lease_back(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter()
    limits = Limits(max_concurrent=1)
    lease = await take(limiter, limits)
    await limiter.settle(lease, tokens=0, cost=Decimal(0), now=T0)
    await limiter.renew([lease], T0 + timedelta(seconds=1))
    assert (await limiter.state(KEY, limits, T0 + timedelta(seconds=1))).in_flight == 0
    await take(limiter, limits, now=T0 + timedelta(seconds=1))
