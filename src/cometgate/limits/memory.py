"""Limits counted in this process: the embedded default, exact for one gateway process.

asyncio-safe by construction: the only await in `acquire` (reading spend from the usage log) comes
before the check, and check and update run with no await between them, so no other task can run
in the middle. Leases lapse after `lease_ttl` unless renewed, as they do in Redis, so a request
whose settle was lost cannot hold its slot and reservation for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from cometgate.limits.limiter import (
    Counts,
    Lease,
    SpendScope,
    SpendSource,
    check_request,
    first_refusal,
    limit_state,
    refusal_error,
    spend_scopes,
)
from cometgate.limits.policy import (
    LAPSED_LEASE_MEMORY,
    LEASE_TTL,
    Limits,
    LimitState,
    as_utc,
    day_window,
    minute_window,
    period_window,
)
from cometgate.serial_ids import SerialIds


@dataclass(slots=True)
class _Window:
    """A count in the current calendar window; moving to a later window starts from zero."""

    start: datetime | None = None
    count: int = 0

    def value(self, start: datetime) -> int:
        return self.count if self.start == start else 0

    def add(self, start: datetime, amount: int) -> None:
        if self.start != start:
            if self.start is not None and start < self.start:
                return  # a window already closed: nothing reads it any more
            self.start, self.count = start, 0
        self.count = max(0, self.count + amount)


@dataclass(slots=True)
class _Ledger:
    """One key's counters. `open` and `lapsed` are in expiry order because every entry's
    expiry is its insertion (or renewal, which moves it to the end) time plus one constant, so
    pruning stops at the first live entry."""

    minute_requests: _Window = field(default_factory=_Window)
    minute_tokens: _Window = field(default_factory=_Window)
    day_requests: _Window = field(default_factory=_Window)
    open: dict[str, tuple[Decimal, datetime]] = field(default_factory=dict)  # cost, expires
    lapsed: dict[str, datetime] = field(default_factory=dict)  # lease id → forget at
    reserved: Decimal = Decimal(0)
    spent: dict[SpendScope, tuple[datetime | None, Decimal]] = field(default_factory=dict)

    def prune(self, now: datetime) -> None:
        while self.open:
            lease_id, (cost, expires_at) = next(iter(self.open.items()))
            if expires_at > now:
                break
            del self.open[lease_id]
            self.reserved -= cost
            self.lapsed[lease_id] = now + LAPSED_LEASE_MEMORY
        while self.lapsed and next(iter(self.lapsed.values())) <= now:
            del self.lapsed[next(iter(self.lapsed))]

    def extend(self, lease_id: str, expires_at: datetime) -> None:
        """A live lease's new expiry; a lapsed or settled one is left as it is."""
        entry = self.open.pop(lease_id, None)
        if entry is not None:
            self.open[lease_id] = (entry[0], expires_at)  # re-inserted last: the latest expiry

    def close(self, lease_id: str) -> bool:
        """Whether the lease was open or lapsed (and is now settled)."""
        if lease_id in self.open:
            cost, _ = self.open.pop(lease_id)
            self.reserved -= cost
            return True
        return self.lapsed.pop(lease_id, None) is not None

    def spent_in(self, scope: SpendScope, since: datetime | None) -> Decimal | None:
        entry = self.spent.get(scope)
        return entry[1] if entry is not None and entry[0] == since else None

    def add_spent(self, cost: Decimal, now: datetime) -> None:
        for scope, (since, amount) in self.spent.items():
            if scope is None or since == period_window(scope, now)[0]:
                self.spent[scope] = (since, amount + cost)

    def counts(self, limits: Limits, now: datetime) -> Counts:
        period_spent = None
        if limits.budget_period is not None:
            since = period_window(limits.budget_period, now)[0]
            period_spent = self.spent_in(limits.budget_period, since) or Decimal(0)
        minute = minute_window(now)[0]
        return Counts(
            requests_this_minute=self.minute_requests.value(minute),
            requests_today=self.day_requests.value(day_window(now)[0]),
            tokens_this_minute=self.minute_tokens.value(minute),
            in_flight=len(self.open),
            reserved=self.reserved,
            spent_total=self.spent_in(None, None) or Decimal(0),
            spent_period=period_spent,
        )


class MemoryLimiter:
    """`Limiter` for one process. Counts start from zero at each start; spending does not,
    since it is read from `spend`."""

    def __init__(self, spend: SpendSource, *, lease_ttl: timedelta = LEASE_TTL) -> None:
        self._spend = spend
        self._lease_ttl = lease_ttl
        self._ledgers: dict[int, _Ledger] = {}
        self._lease_ids = SerialIds()

    async def acquire(
        self, key_id: int, limits: Limits, *, tokens: int, cost: Decimal, now: datetime
    ) -> Lease:
        check_request(tokens, cost)
        now = as_utc(now)
        ledger = await self._ledger_with_spend(key_id, limits, now, with_total=False)
        # From here to the return there is no await: check and update are one step.
        ledger.prune(now)
        refusal = first_refusal(limits, ledger.counts(limits, now), tokens=tokens, cost=cost)
        if refusal is not None:
            raise refusal_error(refusal, limits, tokens=tokens, now=now)
        minute = minute_window(now)[0]
        ledger.minute_requests.add(minute, 1)
        ledger.day_requests.add(day_window(now)[0], 1)
        ledger.minute_tokens.add(minute, tokens)
        lease_id = self._lease_ids.next()
        ledger.open[lease_id] = (cost, now + self._lease_ttl)
        ledger.reserved += cost
        return Lease(lease_id, key_id, limits, tokens, cost, now)

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        now = as_utc(now)
        for lease in leases:
            ledger = self._ledgers.get(lease.key_id)
            if ledger is not None:
                ledger.prune(now)
                ledger.extend(lease.lease_id, now + self._lease_ttl)

    async def settle(self, lease: Lease, *, tokens: int, cost: Decimal, now: datetime) -> None:
        check_request(tokens, cost)
        now = as_utc(now)
        ledger = self._ledgers.get(lease.key_id)
        if ledger is None:
            return  # not one of this limiter's leases
        ledger.prune(now)
        if not ledger.close(lease.lease_id):
            return  # settled already
        minute = minute_window(now)[0]
        extra = tokens - lease.tokens
        # An over-estimate is given back only while its minute is still the current one.
        if extra > 0 or minute == minute_window(lease.acquired_at)[0]:
            ledger.minute_tokens.add(minute, extra)
        ledger.add_spent(cost, now)

    async def state(self, key_id: int, limits: Limits, now: datetime) -> LimitState:
        now = as_utc(now)
        ledger = await self._ledger_with_spend(key_id, limits, now, with_total=True)
        ledger.prune(now)
        return limit_state(limits, ledger.counts(limits, now), now)

    async def aclose(self) -> None:
        """Nothing to release; here so that both limiters close the same way."""

    async def _ledger_with_spend(
        self, key_id: int, limits: Limits, now: datetime, *, with_total: bool
    ) -> _Ledger:
        ledger = self._ledgers.setdefault(key_id, _Ledger())
        for scope, since in spend_scopes(limits, now, with_total=with_total):
            if ledger.spent_in(scope, since) is None:
                amount = await self._spend.spent(key_id, since)
                # Another task may have read it meanwhile and settled on top of it since.
                if ledger.spent_in(scope, since) is None:
                    ledger.spent[scope] = (since, amount)
        return ledger
