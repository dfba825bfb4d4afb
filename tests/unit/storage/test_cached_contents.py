"""The cachedContent store on SQLite and PostgreSQL: key scoping, expiry with an injected
clock, pages, and the upstream copies that go with a cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cometgate.storage.cached_contents import (
    CachedContentStore,
    CacheNotFoundError,
    NewCache,
    UpstreamCopy,
)
from cometgate.storage.database import Database
from cometgate.storage.keys import KeyRepository

START = datetime(2030, 1, 1, tzinfo=UTC)
PREFIX = {"contents": [{"role": "user", "parts": [{"text": "a handbook"}]}],
          "systemInstruction": {"parts": [{"text": "be brief"}]}}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database: Database, clock: Clock) -> CachedContentStore:
    return CachedContentStore(database, clock=clock)


def new(cache_id: str, *, key_id: int = 1, minutes: int = 5) -> NewCache:
    return NewCache(id=cache_id, key_id=key_id, model="m", display_name="d", body=PREFIX,
                    total_tokens=12, expires_at=START + timedelta(minutes=minutes))


async def test_a_cache_is_read_back_by_its_own_key_only(store: CachedContentStore) -> None:
    stored = await store.put(new("c1"))
    got = await store.get("c1", 1)
    assert got == stored
    assert (got.body, got.total_tokens, got.created_at) == (PREFIX, 12, START)
    for cache_id, key_id in (("c1", 2), ("nope", 1)):
        with pytest.raises(CacheNotFoundError):
            await store.get(cache_id, key_id)


async def test_an_expired_cache_is_gone_before_the_sweep(
    store: CachedContentStore, clock: Clock
) -> None:
    await store.put(new("c1", minutes=5))
    clock.now = START + timedelta(minutes=5)
    with pytest.raises(CacheNotFoundError):
        await store.get("c1", 1)
    with pytest.raises(CacheNotFoundError):
        await store.set_expiry("c1", 1, START + timedelta(hours=1))
    assert (await store.page(1, size=10, after=None)).caches == ()


async def test_a_new_expiry_keeps_it_alive(store: CachedContentStore, clock: Clock) -> None:
    await store.put(new("c1", minutes=5))
    clock.now = START + timedelta(minutes=4)
    renewed = await store.set_expiry("c1", 1, START + timedelta(hours=1))
    assert (renewed.updated_at, renewed.created_at) == (clock.now, START)
    clock.now = START + timedelta(minutes=30)
    assert (await store.get("c1", 1)).expires_at == START + timedelta(hours=1)


async def test_pages_follow_creation_order(store: CachedContentStore, clock: Clock) -> None:
    for index in range(5):
        clock.now = START + timedelta(seconds=index)
        await store.put(new(f"c{index}", minutes=60))
    await store.put(new("theirs", key_id=2, minutes=60))
    seen, after = [], None
    while True:
        page = await store.page(1, size=2, after=after)
        seen += [cache.id for cache in page.caches]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [f"c{index}" for index in range(5)]


async def test_copies_go_with_their_cache(store: CachedContentStore, clock: Clock) -> None:
    await store.put(new("c1"))
    await store.put(new("c2", minutes=60))
    assert await store.remember_copy("c1", "google", "fp:gemini-up", "cachedContents/u1")
    # A second copy for the same provider and credential loses: the first one stays.
    assert not await store.remember_copy("c1", "google", "fp:gemini-up", "cachedContents/u2")
    assert await store.copy_of("c1", "google", "fp:gemini-up") == "cachedContents/u1"
    await store.forget_copy("c1", "google", "fp:gemini-up")  # the upstream lost it
    assert await store.copy_of("c1", "google", "fp:gemini-up") is None
    assert await store.remember_copy("c1", "google", "fp:gemini-up", "cachedContents/u1")
    assert await store.remember_copy("c2", "google", "fp:gemini-up", "cachedContents/u3")
    assert await store.delete("c1", 1) == [
        UpstreamCopy("c1", "google", "fp:gemini-up", "cachedContents/u1")]
    assert await store.copy_of("c1", "google", "fp:gemini-up") is None
    with pytest.raises(CacheNotFoundError):
        await store.delete("c1", 1)
    clock.now = START + timedelta(hours=2)
    assert await store.purge_expired() == [
        UpstreamCopy("c2", "google", "fp:gemini-up", "cachedContents/u3")]
    assert await store.purge_expired() == []


async def test_another_key_cannot_delete_it(store: CachedContentStore) -> None:
    await store.put(new("c1"))
    with pytest.raises(CacheNotFoundError):
        await store.delete("c1", 2)
    assert (await store.get("c1", 1)).id == "c1"


async def test_deleting_a_key_ends_its_caches(database: Database) -> None:
    keys = KeyRepository(database)
    record, _ = await keys.create("leaving")
    kept, _ = await keys.create("staying")
    store = CachedContentStore(database)  # the real clock: the key is deleted now
    soon = datetime.now(UTC) + timedelta(hours=1)
    for cache_id, key_id in (("theirs", record.id), ("others", kept.id)):
        await store.put(NewCache(id=cache_id, key_id=key_id, model="m", display_name=None,
                                 body=PREFIX, total_tokens=1, expires_at=soon))
    await store.remember_copy("theirs", "google", "fp:m", "cachedContents/u1")
    await keys.delete(record.name)
    with pytest.raises(CacheNotFoundError):
        await store.get("theirs", record.id)
    assert [copy.upstream_name for copy in await store.purge_expired()] == ["cachedContents/u1"]
    assert (await store.get("others", kept.id)).id == "others"
