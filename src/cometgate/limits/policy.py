"""What a key may do (`Limits`), where it stands (`LimitState`), and the windows both count in.

Windows are fixed calendar windows in UTC: the minute, the day and the month a moment falls in.
Every replica that reads the same clock puts a request in the same window, which is what lets
counts shared through Redis be exact; a sliding window would need every request's timestamp.
A replica whose clock is off counts into the neighbouring window for the length of the skew,
so replicas are expected to keep their clocks synchronised (NTP).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

BudgetPeriod = Literal["day", "month"]
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = ("day", "month")

# A lease that is not renewed (its replica crashed or hung) gives back its concurrency slot and
# its reservation after this long; a live request's lease is renewed every third of it (see
# renewal.py), so only a dead replica's slots lapse. A settle that comes later still counts the
# request's real cost and tokens.
LEASE_TTL = timedelta(seconds=30)
# Renewals per lease TTL: two renewals in a row may fail (a slow Redis, a stalled event loop)
# before a live request loses its slot.
RENEWALS_PER_TTL = 3
# How long a lapsed lease is remembered, so that its late settle counts once and only once.
LAPSED_LEASE_MEMORY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """A key's limits. None means no limit. Invariants: counts are ≥ 1 (a limit of 0 would
    refuse everything: revoke the key instead), amounts are ≥ 0, and a period budget has both
    its period and its amount."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    max_concurrent: int | None = None
    budget_total: Decimal | None = None
    budget_period: BudgetPeriod | None = None
    budget_period_amount: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "rpd", "max_concurrent"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("budget_total", "budget_period_amount"):
            amount = getattr(self, name)
            if amount is not None and not (isinstance(amount, Decimal) and amount >= 0):
                raise ValueError(f"{name} must be a non-negative Decimal, got {amount!r}")
        if self.budget_period is not None and self.budget_period not in BUDGET_PERIODS:
            raise ValueError(f"budget_period must be 'day' or 'month', got {self.budget_period!r}")
        if (self.budget_period is None) != (self.budget_period_amount is None):
            raise ValueError("budget_period and budget_period_amount are set together")


@dataclass(frozen=True, slots=True)
class LimitState:
    """A key's standing at one moment, for rate-limit headers and the balance endpoint.

    Counts are what the current windows hold; `spent_period` is None when the key has no period
    budget. `reserved` is the worst-case cost of requests in flight, not yet settled.
    """

    limits: Limits
    requests_this_minute: int
    requests_today: int
    tokens_this_minute: int
    in_flight: int
    spent_total: Decimal
    spent_period: Decimal | None
    reserved: Decimal
    minute_resets_at: datetime
    day_resets_at: datetime
    period_resets_at: datetime | None

    @property
    def remaining_requests_this_minute(self) -> int | None:
        return _remaining(self.limits.rpm, self.requests_this_minute)

    @property
    def remaining_requests_today(self) -> int | None:
        return _remaining(self.limits.rpd, self.requests_today)

    @property
    def remaining_tokens_this_minute(self) -> int | None:
        return _remaining(self.limits.tpm, self.tokens_this_minute)

    @property
    def remaining_budget_total(self) -> Decimal | None:
        """What a new request may still reserve against the total budget."""
        if self.limits.budget_total is None:
            return None
        return max(Decimal(0), self.limits.budget_total - self.spent_total - self.reserved)

    @property
    def remaining_budget_period(self) -> Decimal | None:
        amount = self.limits.budget_period_amount
        if amount is None or self.spent_period is None:
            return None
        return max(Decimal(0), amount - self.spent_period - self.reserved)


def _remaining(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(0, limit - used)


def as_utc(now: datetime) -> datetime:
    """`now` in UTC; a naive datetime is refused, since its zone would be a guess."""
    if now.tzinfo is UTC:  # the usual case, and the cheap one: no conversion to make
        return now
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: pass a timezone-aware time")
    return now.astimezone(UTC)


def minute_window(now: datetime) -> tuple[datetime, datetime]:
    start = as_utc(now).replace(second=0, microsecond=0)
    return start, start + timedelta(minutes=1)


def day_window(now: datetime) -> tuple[datetime, datetime]:
    start = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def month_window(now: datetime) -> tuple[datetime, datetime]:
    start = as_utc(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def period_window(period: BudgetPeriod, now: datetime) -> tuple[datetime, datetime]:
    return day_window(now) if period == "day" else month_window(now)


def seconds_until(end: datetime, now: datetime) -> float:
    """Whole seconds from `now` to `end`, at least 1: what a Retry-After header can say."""
    remaining = (end - as_utc(now)).total_seconds()
    return float(max(1, math.ceil(remaining)))
