"""Limits shared by every gateway process through one Redis.

Each acquire, settle and state read is one Lua script run by EVALSHA (see redis_scripts), so
replicas never interleave a check with an update: per-minute, per-day and concurrency limits
hold exactly across replicas, and a budget is never exceeded by more than what the spent
amounts read from the usage log missed (see limiter).

Keys are `<prefix>:{<key_id>}:…` (default prefix "cg"):
    leases, lease_costs, reserved, lapsed       the lease ledger; TTL lease TTL + 1 day
    rpm:<YYYYmmddHHMM>, tpm:<YYYYmmddHHMM>      this minute's requests and tokens; TTL ~2 min
    rpd:<YYYYmmdd>                              this day's requests; TTL ~1 day
    spent, spent:day:<YYYYmmdd>, spent:month:<YYYYmmdd>
                                                spent amounts (nano-USD) read from the usage log,
                                                then kept current by settles; TTL 1 day / period
A lease lapses after its TTL (30 seconds by default) unless its replica renews it: every
replica renews all of its live leases in one pipelined round trip every third of the TTL (see
renewal.py), so a replica killed mid-request gives its slots and reservations back within one
TTL. A request whose lease lapsed anyway (its replica could not reach Redis for a whole TTL)
keeps running, but no longer holds its slot or reservation; its settle still counts its real
cost and tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import redis.asyncio

from cometgate.errors import InternalError
from cometgate.limits.limiter import (
    Counts,
    Lease,
    Refusal,
    SpendScope,
    SpendSource,
    check_request,
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
    month_window,
    period_window,
)
from cometgate.limits.redis_scripts import ACQUIRE, RENEW, SETTLE, STATE

# Windows' keys outlive their window a little, for a settle that lands just after it closes.
_WINDOW_GRACE = timedelta(minutes=1)
_DAY_GRACE = timedelta(hours=1)
# A spent total is re-read from the usage log this often, which also corrects any drift.
_SPENT_TOTAL_TTL = timedelta(days=1)


def to_nanos(amount: Decimal, *, rounding: str = ROUND_CEILING) -> int:
    """USD as integer nano-USD. Costs round up, so a reservation never falls short."""
    return int(amount.scaleb(9).to_integral_value(rounding=rounding))


def from_nanos(raw: bytes | str | int) -> Decimal:
    return Decimal(int(raw)).scaleb(-9)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _seconds(span: timedelta) -> int:
    return max(1, int(span.total_seconds()))


def _limit(value: int | Decimal | None) -> str | int:
    if value is None:
        return ""
    return to_nanos(value, rounding=ROUND_FLOOR) if isinstance(value, Decimal) else value


@dataclass(frozen=True, slots=True)
class _KeyNames:
    base: str  # "<prefix>:{<key_id>}"; the braces are the Redis Cluster hash tag

    @property
    def ledger(self) -> list[str]:
        return [f"{self.base}:{part}" for part in ("leases", "lease_costs", "reserved", "lapsed")]

    def minute_requests(self, now: datetime) -> str:
        return f"{self.base}:rpm:{minute_window(now)[0]:%Y%m%d%H%M}"

    def minute_tokens(self, now: datetime) -> str:
        return f"{self.base}:tpm:{minute_window(now)[0]:%Y%m%d%H%M}"

    def day_requests(self, now: datetime) -> str:
        return f"{self.base}:rpd:{day_window(now)[0]:%Y%m%d}"

    def spent(self, scope: SpendScope, since: datetime | None) -> str:
        if scope is None or since is None:
            return f"{self.base}:spent"
        return f"{self.base}:spent:{scope}:{since:%Y%m%d}"

    def window_keys(self, limits: Limits, now: datetime) -> list[str]:
        """KEYS for ACQUIRE and STATE: ledger, windows, spent total, spent this period."""
        period = limits.budget_period or "day"  # without a period budget, a key never read
        since = period_window(period, now)[0]
        return [
            *self.ledger,
            self.minute_requests(now),
            self.day_requests(now),
            self.minute_tokens(now),
            self.spent(None, None),
            self.spent(period, since),
        ]


class RedisLimiter:
    """`Limiter` on Redis. `prefix` separates gateways (or test runs) sharing one Redis;
    replicas of one gateway must use the same prefix and lease TTL."""

    def __init__(
        self,
        url: str,
        spend: SpendSource,
        *,
        lease_ttl: timedelta = LEASE_TTL,
        prefix: str = "cg",
    ) -> None:
        self._redis: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url)
        self._spend = spend
        self._lease_ttl = lease_ttl
        self._prefix = prefix
        self._acquire = self._redis.register_script(ACQUIRE)
        self._settle = self._redis.register_script(SETTLE)
        self._renew = self._redis.register_script(RENEW)
        self._state = self._redis.register_script(STATE)

    async def acquire(
        self, key_id: int, limits: Limits, *, tokens: int, cost: Decimal, now: datetime
    ) -> Lease:
        check_request(tokens, cost)
        now = as_utc(now)
        names = self._names(key_id)
        lease_id = uuid.uuid4().hex
        keys = names.window_keys(limits, now)
        args = [
            *self._clock_args(now),
            lease_id,
            _ms(now + self._lease_ttl),
            *(_limit(v) for v in (limits.rpm, limits.rpd, limits.tpm, limits.max_concurrent)),
            _limit(limits.budget_total),
            _limit(limits.budget_period_amount),
            tokens,
            to_nanos(cost),
            _seconds(minute_window(now)[1] - now + _WINDOW_GRACE),
            _seconds(day_window(now)[1] - now + _DAY_GRACE),
            self._ledger_ttl,
        ]
        answer = await self._acquire(keys=keys, args=args)
        if answer == b"spend_unknown":
            await self._load_spend(names, key_id, spend_scopes(limits, now, with_total=False), now)
            answer = await self._acquire(keys=keys, args=args)
        if answer == b"ok":
            return Lease(lease_id, key_id, limits, tokens, cost, now)
        if answer == b"spend_unknown":  # only if Redis dropped what was just stored
            raise InternalError("The rate limiter could not record this key's spending.")
        raise refusal_error(Refusal(answer.decode()), limits, tokens=tokens, now=now)

    async def renew(self, leases: Sequence[Lease], now: datetime) -> None:
        """One script run per key (a key's names share one hash slot), all in one pipeline."""
        now = as_utc(now)
        by_key: dict[int, list[str]] = {}
        for lease in leases:
            by_key.setdefault(lease.key_id, []).append(lease.lease_id)
        if not by_key:
            return
        expiry = _ms(now + self._lease_ttl)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id, lease_ids in by_key.items():
                args: list[int | str] = [*self._clock_args(now), expiry, self._ledger_ttl,
                                         *lease_ids]
                await self._renew(keys=self._names(key_id).ledger, args=args, client=pipe)
            await pipe.execute()

    async def settle(self, lease: Lease, *, tokens: int, cost: Decimal, now: datetime) -> None:
        check_request(tokens, cost)
        now = as_utc(now)
        names = self._names(lease.key_id)
        same_minute = minute_window(now)[0] == minute_window(lease.acquired_at)[0]
        keys = [
            *names.ledger,
            names.minute_tokens(now),
            names.spent(None, None),
            names.spent("day", day_window(now)[0]),
            names.spent("month", month_window(now)[0]),
        ]
        args = [
            *self._clock_args(now),
            lease.lease_id,
            tokens - lease.tokens,
            "1" if same_minute else "0",
            to_nanos(cost),
            _seconds(minute_window(now)[1] - now + _WINDOW_GRACE),
        ]
        await self._settle(keys=keys, args=args)

    async def state(self, key_id: int, limits: Limits, now: datetime) -> LimitState:
        now = as_utc(now)
        names = self._names(key_id)
        await self._load_spend(names, key_id, spend_scopes(limits, now, with_total=True), now)
        raw: list[Any] = await self._state(
            keys=names.window_keys(limits, now), args=self._clock_args(now)
        )
        period_spent = None
        if limits.budget_period is not None:
            period_spent = from_nanos(raw[6] or 0)
        counts = Counts(
            requests_this_minute=int(raw[0]),
            requests_today=int(raw[1]),
            tokens_this_minute=int(raw[2]),
            in_flight=int(raw[3]),
            reserved=from_nanos(raw[4]),
            spent_total=from_nanos(raw[5] or 0),
            spent_period=period_spent,
        )
        return limit_state(limits, counts, now)

    async def aclose(self) -> None:
        await self._redis.aclose()

    @property
    def _ledger_ttl(self) -> int:
        return _seconds(self._lease_ttl + LAPSED_LEASE_MEMORY)

    def _names(self, key_id: int) -> _KeyNames:
        return _KeyNames(f"{self._prefix}:{{{key_id}}}")

    def _clock_args(self, now: datetime) -> list[int]:
        return [_ms(now), _ms(now + LAPSED_LEASE_MEMORY)]

    async def _load_spend(
        self,
        names: _KeyNames,
        key_id: int,
        scopes: list[tuple[SpendScope, datetime | None]],
        now: datetime,
    ) -> None:
        """Store each missing spent amount from the usage log. SET NX: an amount another
        replica stored meanwhile (and may have settled on top of) wins."""
        for scope, since in scopes:
            name = names.spent(scope, since)
            if await self._redis.exists(name):
                continue
            amount = await self._spend.spent(key_id, since)
            ttl = _SPENT_TOTAL_TTL
            if scope is not None:
                ttl = period_window(scope, now)[1] - now + _DAY_GRACE
            await self._redis.set(name, to_nanos(amount), nx=True, ex=_seconds(ttl))
