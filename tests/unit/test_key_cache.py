"""KeyCache: one read per key at a time, stale answers served while one task re-reads."""

from __future__ import annotations

import asyncio

import pytest

from cometgate.api.key_cache import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Keys:
    """A key store whose reads wait for the test to release them, and count."""

    def __init__(self) -> None:
        self.reads = 0
        self.answer = "alice"
        self.fail: Exception | None = None
        self.gate = asyncio.Event()

    async def load(self, key: str) -> str:
        self.reads += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return f"{self.answer}:{key}"


async def _settled() -> None:
    for _ in range(5):  # the read task, then its done callback
        await asyncio.sleep(0)


async def test_callers_of_an_unknown_key_share_one_read() -> None:
    keys, clock = Keys(), Clock()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    waiting = [asyncio.create_task(cache.get("d", "k")) for _ in range(50)]
    await _settled()
    keys.gate.set()
    assert await asyncio.gather(*waiting) == ["alice:k"] * 50
    assert keys.reads == 1


async def test_a_fresh_answer_is_not_read_again() -> None:
    keys, clock = Keys(), Clock()
    keys.gate.set()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    await cache.get("d", "k")
    clock.now = 1.9
    assert await cache.get("d", "k") == "alice:k"
    assert keys.reads == 1


async def test_an_expired_answer_is_served_while_one_task_reads_it_again() -> None:
    keys, clock = Keys(), Clock()
    keys.gate.set()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    await cache.get("d", "k")
    keys.gate.clear()
    keys.answer = "revoked"
    clock.now = 2.0
    # Nobody waits on the re-read: fifty requests get the old answer at once, with one read.
    assert [await cache.get("d", "k") for _ in range(50)] == ["alice:k"] * 50
    await _settled()
    assert keys.reads == 2
    keys.gate.set()
    await _settled()
    assert await cache.get("d", "k") == "revoked:k"
    assert keys.reads == 2


async def test_a_failed_reread_keeps_the_old_answer_and_the_next_request_retries() -> None:
    keys, clock = Keys(), Clock()
    keys.gate.set()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    await cache.get("d", "k")
    keys.fail = ConnectionError("database gone")
    clock.now = 3.0
    assert await cache.get("d", "k") == "alice:k"
    await _settled()
    keys.fail = None
    assert await cache.get("d", "k") == "alice:k"  # still stale: a new read starts behind it
    await _settled()
    assert keys.reads == 3
    assert await cache.get("d", "k") == "alice:k"
    clock.now = 4.9
    assert await cache.get("d", "k") == "alice:k" and keys.reads == 3  # fresh again


async def test_an_answer_older_than_twice_the_ttl_is_read_again_before_it_answers() -> None:
    keys, clock = Keys(), Clock()
    keys.gate.set()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    await cache.get("d", "k")
    keys.answer = "revoked"
    clock.now = 4.0
    assert await cache.get("d", "k") == "revoked:k"


async def test_with_no_ttl_every_request_reads_the_key() -> None:
    keys, clock = Keys(), Clock()
    keys.gate.set()
    cache = KeyCache(keys.load, ttl=0.0, clock=clock)
    assert await cache.get("d", "k") == "alice:k"
    keys.answer = "revoked"
    assert await cache.get("d", "k") == "revoked:k"
    assert keys.reads == 2


async def test_a_failed_first_read_fails_every_waiter_and_is_not_remembered() -> None:
    keys, clock = Keys(), Clock()
    keys.fail = ConnectionError("database gone")
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    waiting = [asyncio.create_task(cache.get("d", "k")) for _ in range(3)]
    await _settled()
    keys.gate.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, ConnectionError)
    keys.fail = None
    assert await cache.get("d", "k") == "alice:k"
    assert keys.reads == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_read() -> None:
    keys, clock = Keys(), Clock()
    cache = KeyCache(keys.load, ttl=2.0, clock=clock)
    first = asyncio.create_task(cache.get("d", "k"))
    second = asyncio.create_task(cache.get("d", "k"))
    await _settled()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    keys.gate.set()
    assert await second == "alice:k"
    assert keys.reads == 1
