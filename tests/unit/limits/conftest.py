"""Limiter fixtures: a spend source that is a tiny usage log, and `make_limiter`, parametrized
over the in-process limiter, the Redis one and the in-process one served on a Unix socket.

The Redis variant needs COMETGATE_TEST_REDIS_URL (scripts/test exports it); without it that
variant skips, saying why, except in CI (CI=true), where both must run and it fails instead.
Each test gets its own key prefix on the shared server, deleted afterwards, so tests are
isolated from each other and from other runs; every limiter one test makes shares that prefix,
as replicas of one gateway do.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cometgate.limits.limiter import Limiter
from cometgate.limits.memory import MemoryLimiter
from cometgate.limits.policy import LEASE_TTL
from cometgate.limits.shared import LimiterServer, SharedLimiter

# A Friday afternoon in March, 45 seconds before the minute ends.
T0 = datetime(2025, 3, 14, 12, 30, 15, tzinfo=UTC)


class UsageLog:
    """The part of the usage store a limiter reads: recorded costs, summed since a time."""

    def __init__(self, entries: list[tuple[int, datetime, Decimal]] | None = None) -> None:
        self.entries = list(entries or [])
        self.reads: list[tuple[int, datetime | None]] = []

    async def spent(self, key_id: int, since: datetime | None) -> Decimal:
        self.reads.append((key_id, since))
        costs = (
            cost
            for key, at, cost in self.entries
            if key == key_id and (since is None or at >= since)
        )
        return sum(costs, Decimal(0))


MakeLimiter = Callable[..., Limiter]


def redis_url() -> str:
    url = os.environ.get("COMETGATE_TEST_REDIS_URL")
    if url:
        return url
    reason = "COMETGATE_TEST_REDIS_URL is not set (scripts/services starts Redis and sets it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must test Redis too, but {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["memory", "redis", "shared"])
async def make_limiter(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeLimiter]:
    """`make_limiter(spend, lease_ttl=...)`: a new limiter; all of one test's share a store.
    "shared": an in-process limiter served on a Unix socket, reached as the workers of
    `serve --workers N` reach their parent's (limits/shared.py)."""
    made: list[Limiter] = []
    servers: list[LimiterServer] = []
    url = redis_url() if request.param == "redis" else None
    prefix = f"cg-test-{secrets.token_hex(6)}"

    def make(spend: UsageLog | None = None, *, lease_ttl: timedelta = LEASE_TTL) -> Limiter:
        log = spend if spend is not None else UsageLog()
        limiter: Limiter
        if request.param == "shared":
            path = tmp_path / f"limits-{len(servers)}.sock"
            server = LimiterServer(MemoryLimiter(log, lease_ttl=lease_ttl), path)
            server.bind()  # a call made before the server task runs waits in the backlog
            servers.append(server)
            starting = asyncio.get_running_loop().create_task(server.start())
            starting.add_done_callback(lambda task: task.result())
            limiter = SharedLimiter(path)
        elif url is None:
            limiter = MemoryLimiter(log, lease_ttl=lease_ttl)
        else:
            from cometgate.limits.redis import RedisLimiter

            limiter = RedisLimiter(url, log, lease_ttl=lease_ttl, prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    if url is not None:
        await delete_prefix(url, prefix)
    for limiter in made:
        await limiter.aclose()
    for server in servers:
        await server.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        names = [name async for name in client.scan_iter(match=f"{prefix}:*")]
        if names:
            await client.delete(*names)
    finally:
        await client.aclose()
