"""Per-key rate limits, concurrency and budgets: counted in this process, or in Redis when
several gateway processes share them."""

from __future__ import annotations

from datetime import timedelta

from cometgate.limits.limiter import Lease, Limiter, SpendSource
from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.policy import LEASE_TTL, RENEWALS_PER_TTL, Limits, LimitState
from cometgate.limits.renewal import LeaseKeeper

__all__ = [
    "Lease",
    "LeaseKeeper",
    "LimitState",
    "Limiter",
    "Limits",
    "MemoryLimiter",
    "SpendSource",
    "create_keeper",
    "create_limiter",
]


def create_limiter(
    redis_url: str | None, spend: SpendSource, *, lease_ttl: timedelta = LEASE_TTL
) -> Limiter:
    """Redis-backed limits when a URL is configured, else in-process ones."""
    if redis_url is None:
        return MemoryLimiter(spend, lease_ttl=lease_ttl)
    from cometgate.limits.redis import RedisLimiter  # the Redis client loads only when used

    return RedisLimiter(redis_url, spend, lease_ttl=lease_ttl)


def create_keeper(limiter: Limiter, lease_ttl: timedelta = LEASE_TTL) -> LeaseKeeper:
    """The renewal of this process's leases, often enough to survive two failed renewals."""
    return LeaseKeeper(limiter, lease_ttl / RENEWALS_PER_TTL)
