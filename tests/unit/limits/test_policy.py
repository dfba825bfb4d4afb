"""Limits' invariants, calendar windows, remaining amounts and the errors refusals become."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from tests.unit.limits.conftest import T0, UsageLog

from cometgate.errors import BudgetExhausted, RateLimited, RequestRejected
from cometgate.limits import MemoryLimiter, create_limiter
from cometgate.limits.limiter import Counts, Refusal, first_refusal, limit_state, refusal_error
from cometgate.limits.policy import (
    Limits,
    day_window,
    minute_window,
    month_window,
    seconds_until,
)


@pytest.mark.parametrize(
    "fields",
    [
        {"rpm": 0},
        {"tpm": -5},
        {"rpd": True},
        {"rpm": 1.5},
        {"max_concurrent": 0},
        {"budget_total": Decimal("-0.01")},
        {"budget_total": 5.0},
        {"budget_period": "week", "budget_period_amount": Decimal(1)},
        {"budget_period": "day"},
        {"budget_period_amount": Decimal(1)},
    ],
)
def test_limits_refuse_values_no_counter_could_honour(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Limits(**fields)  # type: ignore[arg-type]


def test_limits_accept_a_zero_budget_and_every_limit_together() -> None:
    limits = Limits(1, 1, 1, 1, Decimal(0), "month", Decimal(0))
    assert limits.budget_period == "month"


@pytest.mark.parametrize(
    ("moment", "window", "start", "end"),
    [
        (T0, minute_window, datetime(2025, 3, 14, 12, 30), datetime(2025, 3, 14, 12, 31)),
        (T0, day_window, datetime(2025, 3, 14), datetime(2025, 3, 15)),
        (T0, month_window, datetime(2025, 3, 1), datetime(2025, 4, 1)),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), month_window,
         datetime(2024, 12, 1), datetime(2025, 1, 1)),
        (datetime(2024, 2, 29, 1, tzinfo=UTC), month_window,
         datetime(2024, 2, 1), datetime(2024, 3, 1)),
        # 23:30 in New York on 14 March is already 15 March in UTC, and windows are UTC.
        (datetime(2025, 3, 14, 23, 30, tzinfo=timezone(timedelta(hours=-4))), day_window,
         datetime(2025, 3, 15), datetime(2025, 3, 16)),
    ],
)
def test_windows_are_utc_calendar_windows(
    moment: datetime, window: object, start: datetime, end: datetime
) -> None:
    assert window(moment) == (start.replace(tzinfo=UTC), end.replace(tzinfo=UTC))  # type: ignore[operator]


def test_windows_refuse_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        minute_window(datetime(2025, 3, 14))


@pytest.mark.parametrize(
    ("offset", "expected"), [(0, 45.0), (0.2, 45.0), (44.2, 1.0), (45, 1.0), (50, 1.0)]
)
def test_retry_after_is_whole_seconds_and_at_least_one(offset: float, expected: float) -> None:
    end = T0 + timedelta(seconds=45)
    assert seconds_until(end, T0 + timedelta(seconds=offset)) == expected


COUNTS = Counts(
    requests_this_minute=5,
    requests_today=50,
    tokens_this_minute=900,
    in_flight=3,
    reserved=Decimal("2"),
    spent_total=Decimal("7"),
    spent_period=Decimal("1"),
)

DAILY_3 = Limits(budget_period="day", budget_period_amount=Decimal(3))


@pytest.mark.parametrize(
    ("limits", "tokens", "cost", "expected"),
    [
        (Limits(rpm=5), 0, "0", Refusal.RPM),
        (Limits(rpm=6), 0, "0", None),
        (Limits(rpd=50), 0, "0", Refusal.RPD),
        (Limits(tpm=1000), 100, "0", None),
        (Limits(tpm=1000), 101, "0", Refusal.TPM),
        (Limits(max_concurrent=3), 0, "0", Refusal.CONCURRENT),
        (Limits(budget_total=Decimal(10)), 0, "1", None),
        (Limits(budget_total=Decimal(10)), 0, "1.01", Refusal.BUDGET_TOTAL),
        (DAILY_3, 0, "0", None),
        (DAILY_3, 0, "0.1", Refusal.BUDGET_PERIOD),
        # The first limit in check order names the refusal.
        (Limits(rpm=1, max_concurrent=1, budget_total=Decimal(0)), 0, "1", Refusal.RPM),
    ],
)
def test_first_refusal_is_exact_at_each_boundary(
    limits: Limits, tokens: int, cost: str, expected: Refusal | None
) -> None:
    assert first_refusal(limits, COUNTS, tokens=tokens, cost=Decimal(cost)) == expected


@pytest.mark.parametrize(
    ("refusal", "kind", "message", "retry_after"),
    [
        (Refusal.RPM, RateLimited,
         "Quota exceeded for requests per minute (rpm=60) on this API key.", 45.0),
        (Refusal.RPD, RateLimited,
         "Quota exceeded for requests per day (rpd=1000) on this API key.", 41385.0),
        (Refusal.TPM, RateLimited,
         "Quota exceeded for tokens per minute (tpm=5000) on this API key.", 45.0),
        (Refusal.CONCURRENT, RateLimited, "(max_concurrent=4)", 1.0),
        (Refusal.BUDGET_TOTAL, BudgetExhausted, "total budget of 100 USD", None),
        (Refusal.BUDGET_PERIOD, BudgetExhausted, "monthly budget of 20.50 USD",
         (datetime(2025, 4, 1, tzinfo=UTC) - T0).total_seconds()),
    ],
)
def test_refusals_become_429s_that_name_the_limit(
    refusal: Refusal, kind: type[RequestRejected], message: str, retry_after: float | None
) -> None:
    limits = Limits(60, 5000, 1000, 4, Decimal(100), "month", Decimal("20.50"))
    error = refusal_error(refusal, limits, tokens=10, now=T0)
    assert type(error) is kind
    assert message in error.message
    assert (error.http_status, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.retry_after == retry_after  # type: ignore[attr-defined]


def test_state_remaining_amounts_never_go_negative() -> None:
    limits = Limits(rpm=3, tpm=100, rpd=10, budget_total=Decimal(5),
                    budget_period="day", budget_period_amount=Decimal("0.5"))
    state = limit_state(limits, COUNTS, T0)
    assert state.remaining_requests_this_minute == 0
    assert state.remaining_tokens_this_minute == 0
    assert state.remaining_requests_today == 0
    assert state.remaining_budget_total == 0
    assert state.remaining_budget_period == 0
    assert state.period_resets_at == datetime(2025, 3, 15, tzinfo=UTC)


async def test_create_limiter_counts_in_process_without_a_redis_url() -> None:
    limiter = create_limiter(None, UsageLog())
    assert isinstance(limiter, MemoryLimiter)
    await limiter.aclose()
