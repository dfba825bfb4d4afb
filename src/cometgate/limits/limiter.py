"""The limiter's contract, shared by the in-process and the Redis implementations.

A request takes a `Lease` before it goes upstream and settles it when it ends:

- `acquire` checks every limit and, only if all pass, counts the request in its minute and day,
  adds the prompt estimate to the minute's tokens, takes a concurrency slot and reserves the
  request's worst-case cost — check and update as one step, so concurrent requests (and, with
  Redis, replicas) never both pass a check that only one of them fits.
- `renew` pushes the expiry of live leases to a full lease TTL from now, all of them in one
  step (one batched call to Redis); a lease that has already lapsed stays lapsed, so a slot
  given to another request is never taken back. `renewal.LeaseKeeper` calls it on an interval
  for every lease this process holds.
- `settle` gives the slot back, drops the reservation, adds the real cost to what was spent and
  corrects the minute's tokens to the real count. It is idempotent; a failed request settles
  with cost 0.

Spending survives restarts through `SpendSource` (the usage log): the limiter reads the amount
spent once per key and budget window, then keeps it current with its own settles. The amount is
what the log holds when it is read; a request settled while its usage record is still waiting
for the log's group commit is missing from that one reading, so a budget can be overrun by at
most the cost of the requests in that moment, once per key and window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from cometgate.errors import BudgetExhausted, RateLimited, RequestRejected
from cometgate.limits.policy import (
    BudgetPeriod,
    Limits,
    LimitState,
    day_window,
    minute_window,
    period_window,
    seconds_until,
)


class SpendSource(Protocol):
    async def spent(self, key_id: int, since: datetime | None) -> Decimal:
        """The cost of the key's requests recorded at or after `since` (None: ever)."""
        ...


@dataclass(frozen=True, slots=True)
class Lease:
    """A request admitted by `acquire`: what it counted and reserved, for `settle`."""

    lease_id: str
    key_id: int
    limits: Limits
    tokens: int  # the prompt estimate counted in the minute of `acquired_at`
    cost: Decimal  # the worst-case cost reserved
    acquired_at: datetime


class Limiter(Protocol):
    async def acquire(
        self, key_id: int, limits: Limits, *, tokens: int, cost: Decimal, now: datetime
    ) -> Lease:
        """Admit a request or raise `RateLimited` / `BudgetExhausted` (see the module doc)."""
        ...

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        """Keep `leases` (this process's live ones) for another lease TTL from `now`."""
        ...

    async def settle(self, lease: Lease, *, tokens: int, cost: Decimal, now: datetime) -> None:
        """End an admitted request with its real tokens and cost. Idempotent."""
        ...

    async def state(self, key_id: int, limits: Limits, now: datetime) -> LimitState: ...

    async def aclose(self) -> None: ...


class Refusal(StrEnum):
    """Which limit refused a request, in the order they are checked."""

    RPM = "rpm"
    RPD = "rpd"
    TPM = "tpm"
    CONCURRENT = "concurrent"
    BUDGET_TOTAL = "budget_total"
    BUDGET_PERIOD = "budget_period"


# A refused concurrent request may go as soon as any other ends, which cannot be foreseen.
CONCURRENCY_RETRY_AFTER = 1.0


def check_request(tokens: int, cost: Decimal) -> None:
    """Refuse inputs no limit could count; these are the caller's (our pipeline's) bugs."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError(f"tokens must be a non-negative int, got {tokens!r}")
    if not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0:
        raise ValueError(f"cost must be a non-negative finite Decimal, got {cost!r}")


def refusal_error(
    refusal: Refusal, limits: Limits, *, tokens: int, now: datetime
) -> RequestRejected:
    """The error a caller sees for `refusal`: it names the limit and when to retry."""
    minute_end = minute_window(now)[1]
    if refusal is Refusal.RPM:
        return RateLimited(
            f"Quota exceeded for requests per minute (rpm={limits.rpm}) on this API key.",
            retry_after=seconds_until(minute_end, now),
        )
    if refusal is Refusal.RPD:
        return RateLimited(
            f"Quota exceeded for requests per day (rpd={limits.rpd}) on this API key.",
            retry_after=seconds_until(day_window(now)[1], now),
        )
    if refusal is Refusal.TPM:
        message = _tokens_message(limits, tokens)
        return RateLimited(message, retry_after=seconds_until(minute_end, now))
    if refusal is Refusal.CONCURRENT:
        return RateLimited(
            f"Too many concurrent requests (max_concurrent={limits.max_concurrent}) on this "
            "API key; retry when one of them has finished.",
            retry_after=CONCURRENCY_RETRY_AFTER,
        )
    return _budget_error(refusal, limits, now)


def _tokens_message(limits: Limits, tokens: int) -> str:
    if limits.tpm is not None and tokens > limits.tpm:
        return (
            f"This request's {tokens} prompt tokens exceed the tokens per minute limit "
            f"(tpm={limits.tpm}) on this API key; it cannot succeed as it is."
        )
    return f"Quota exceeded for tokens per minute (tpm={limits.tpm}) on this API key."


def _budget_error(refusal: Refusal, limits: Limits, now: datetime) -> BudgetExhausted:
    if refusal is Refusal.BUDGET_TOTAL:
        return BudgetExhausted(
            f"Budget exhausted: the total budget of {limits.budget_total} USD on this API key "
            "is spent or reserved by requests in flight."
        )
    period = limits.budget_period or "day"
    label = "daily" if period == "day" else "monthly"
    return BudgetExhausted(
        f"Budget exhausted: the {label} budget of {limits.budget_period_amount} USD on this "
        "API key is spent or reserved by requests in flight.",
        retry_after=seconds_until(period_window(period, now)[1], now),
    )


# A spend scope: a budget period, or None for all time (the total budget).
SpendScope = BudgetPeriod | None


def spend_scopes(
    limits: Limits, now: datetime, *, with_total: bool
) -> list[tuple[SpendScope, datetime | None]]:
    """The (scope, since) spend amounts a check against `limits` at `now` needs."""
    scopes: list[tuple[SpendScope, datetime | None]] = []
    if with_total or limits.budget_total is not None:
        scopes.append((None, None))
    if limits.budget_period is not None:
        scopes.append((limits.budget_period, period_window(limits.budget_period, now)[0]))
    return scopes


@dataclass(frozen=True, slots=True)
class Counts:
    """What a key's current windows and ledger hold, as read in one step."""

    requests_this_minute: int
    requests_today: int
    tokens_this_minute: int
    in_flight: int
    reserved: Decimal
    spent_total: Decimal
    spent_period: Decimal | None


def limit_state(limits: Limits, counts: Counts, now: datetime) -> LimitState:
    period_end = None
    if limits.budget_period is not None:
        period_end = period_window(limits.budget_period, now)[1]
    return LimitState(
        limits=limits,
        requests_this_minute=counts.requests_this_minute,
        requests_today=counts.requests_today,
        tokens_this_minute=counts.tokens_this_minute,
        in_flight=counts.in_flight,
        spent_total=counts.spent_total,
        spent_period=counts.spent_period,
        reserved=counts.reserved,
        minute_resets_at=minute_window(now)[1],
        day_resets_at=day_window(now)[1],
        period_resets_at=period_end,
    )


def first_refusal(limits: Limits, counts: Counts, *, tokens: int, cost: Decimal) -> Refusal | None:
    """The first limit that refuses a request of `tokens` and `cost` given `counts`."""
    if limits.rpm is not None and counts.requests_this_minute >= limits.rpm:
        return Refusal.RPM
    if limits.rpd is not None and counts.requests_today >= limits.rpd:
        return Refusal.RPD
    if limits.tpm is not None and counts.tokens_this_minute + tokens > limits.tpm:
        return Refusal.TPM
    if limits.max_concurrent is not None and counts.in_flight >= limits.max_concurrent:
        return Refusal.CONCURRENT
    committed = counts.reserved + cost
    if limits.budget_total is not None and counts.spent_total + committed > limits.budget_total:
        return Refusal.BUDGET_TOTAL
    amount = limits.budget_period_amount
    if amount is not None and (counts.spent_period or 0) + committed > amount:
        return Refusal.BUDGET_PERIOD
    return None
