"""Per-key rate limits, concurrency and budgets: counted in this process, or in Redis when
several gateway processes share them."""

from __future__ import annotations

from cometgate.limits.limiter import Lease, Limiter, SpendSource
from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.policy import Limits, LimitState

__all__ = [
    "Lease",
    "LimitState",
    "Limiter",
    "Limits",
    "MemoryLimiter",
    "SpendSource",
    "create_limiter",
]


def create_limiter(redis_url: str | None, spend: SpendSource) -> Limiter:
    """Redis-backed limits when a URL is configured, else in-process ones."""
    if redis_url is None:
        return MemoryLimiter(spend)
    from cometgate.limits.redis import RedisLimiter  # the Redis client loads only when used

    return RedisLimiter(redis_url, spend)
