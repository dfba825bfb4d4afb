"""Stored cachedContents: a prompt prefix (contents, system instruction, tools, tool config)
that a key keeps for reuse with one model, and the copies Gemini upstreams hold of it.

Invariants:
- Every read, update and delete on behalf of a caller names the key that created the cache;
  another key's cache, an expired one and a missing one are the same answer
  (CacheNotFoundError), so a caller learns nothing about ids it does not own.
- A cache is invisible from its `expires_at` on, whether or not the sweep removed it yet;
  `purge_expired` removes such caches and hands back their upstream copies, so the caller of
  the sweep can delete those upstream too.
- The clock is injected, so expiry is tested without waiting.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from cometgate.storage.database import Database
from cometgate.storage.schema import cached_contents, upstream_cached_contents

Clock = Callable[[], datetime]
_PURGE_BATCH = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


class CacheNotFoundError(LookupError):
    """A cache is missing, expired, deleted or another key's."""


@dataclass(frozen=True, slots=True)
class NewCache:
    id: str
    key_id: int
    model: str
    display_name: str | None
    body: Mapping[str, Any]  # the cached prefix in Gemini JSON (camelCase)
    total_tokens: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCache:
    id: str
    key_id: int
    model: str
    display_name: str | None
    body: dict[str, Any]
    total_tokens: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UpstreamCopy:
    """A Gemini upstream's own cachedContent holding a cache's prefix, made with one
    credential (named by its reference, never its secret)."""

    cache_id: str
    provider: str
    credential: str
    upstream_name: str


@dataclass(frozen=True, slots=True)
class CachePage:
    caches: tuple[StoredCache, ...]
    next_after: str | None  # the id the next page starts after; None on the last page


class CachedContentStore:
    """Caches in `cached_contents`, their upstream copies in `upstream_cached_contents`."""

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._engine = database.engine
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    async def put(self, cache: NewCache, *, now: datetime | None = None) -> StoredCache:
        """`now`: the creation time (the one its ttl was counted from), else the clock's."""
        now = now or self._clock()
        async with self._engine.begin() as conn:
            await conn.execute(insert(cached_contents).values(
                id=cache.id, key_id=cache.key_id, model=cache.model,
                display_name=cache.display_name, body=_dumps(cache.body),
                total_tokens=cache.total_tokens, created_at=now, updated_at=now,
                expires_at=cache.expires_at,
            ))
        return StoredCache(cache.id, cache.key_id, cache.model, cache.display_name,
                           dict(cache.body), cache.total_tokens, now, now, cache.expires_at)

    async def get(self, cache_id: str, key_id: int) -> StoredCache:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(cached_contents).where(self._visible(cache_id, key_id))
            )).one_or_none()
        if row is None:
            raise CacheNotFoundError(cache_id)
        return _cache(row)

    async def page(self, key_id: int, *, size: int, after: str | None) -> CachePage:
        """A key's live caches, oldest first; `after` continues from a cache id."""
        caches = cached_contents.c
        query = select(cached_contents).where(caches.key_id == key_id,
                                              caches.expires_at > self._clock())
        if after is not None:
            anchor = select(caches.created_at).where(caches.id == after).scalar_subquery()
            query = query.where(or_(caches.created_at > anchor,
                                    and_(caches.created_at == anchor, caches.id > after)))
        query = query.order_by(caches.created_at, caches.id).limit(size + 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = tuple(_cache(row) for row in rows[:size])
        return CachePage(found, found[-1].id if len(rows) > size else None)

    async def set_expiry(self, cache_id: str, key_id: int, expires_at: datetime,
                         *, now: datetime | None = None) -> StoredCache:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(cached_contents).where(self._visible(cache_id, key_id))
                .values(expires_at=expires_at, updated_at=now or self._clock())
            )
        if not result.rowcount:
            raise CacheNotFoundError(cache_id)
        return await self.get(cache_id, key_id)

    async def delete(self, cache_id: str, key_id: int) -> builtins.list[UpstreamCopy]:
        """Remove a cache; returns its upstream copies (removed with it) for deletion there."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(cached_contents).where(self._visible(cache_id, key_id)))
            if not result.rowcount:
                raise CacheNotFoundError(cache_id)
            return await _take_copies(conn, [cache_id])

    async def purge_expired(self) -> builtins.list[UpstreamCopy]:
        """The sweep: remove every expired cache; returns the upstream copies removed with them."""
        taken: builtins.list[UpstreamCopy] = []
        while True:
            async with self._engine.begin() as conn:
                ids = builtins.list((await conn.execute(
                    select(cached_contents.c.id)
                    .where(cached_contents.c.expires_at <= self._clock()).limit(_PURGE_BATCH)
                )).scalars().all())
                if not ids:
                    return taken
                await conn.execute(delete(cached_contents)
                                   .where(cached_contents.c.id.in_(ids)))
                taken.extend(await _take_copies(conn, ids))

    async def copies(self, cache_id: str) -> builtins.list[UpstreamCopy]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(upstream_cached_contents)
                                      .where(upstream_cached_contents.c.cache_id == cache_id))
            return [_copy(row) for row in rows]

    async def copy_of(self, cache_id: str, provider: str, credential: str) -> str | None:
        copies = upstream_cached_contents.c
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(copies.upstream_name).where(
                copies.cache_id == cache_id, copies.provider == provider,
                copies.credential == credential))).scalar_one_or_none()
        return None if found is None else str(found)

    async def remember_copy(
        self, cache_id: str, provider: str, credential: str, upstream_name: str
    ) -> bool:
        """False when another request remembered a copy first (the caller then deletes its
        own, so that one copy per provider and credential stays)."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(upstream_cached_contents).values(
                    cache_id=cache_id, provider=provider, credential=credential,
                    upstream_name=upstream_name))
        except IntegrityError:
            return False
        return True

    async def forget_copy(self, cache_id: str, provider: str, credential: str) -> None:
        copies = upstream_cached_contents.c
        async with self._engine.begin() as conn:
            await conn.execute(delete(upstream_cached_contents).where(
                copies.cache_id == cache_id, copies.provider == provider,
                copies.credential == credential))

    def _visible(self, cache_id: str, key_id: int) -> Any:
        caches = cached_contents.c
        return and_(caches.id == cache_id, caches.key_id == key_id,
                    caches.expires_at > self._clock())


async def _take_copies(conn: Any, cache_ids: builtins.list[str]) -> builtins.list[UpstreamCopy]:
    copies = upstream_cached_contents.c
    rows = (await conn.execute(select(upstream_cached_contents)
                               .where(copies.cache_id.in_(cache_ids)))).all()
    await conn.execute(delete(upstream_cached_contents).where(copies.cache_id.in_(cache_ids)))
    return [_copy(row) for row in rows]


def _cache(row: Row[Any]) -> StoredCache:
    return StoredCache(
        id=row.id, key_id=row.key_id, model=row.model, display_name=row.display_name,
        body=orjson.loads(row.body), total_tokens=row.total_tokens,
        created_at=row.created_at, updated_at=row.updated_at, expires_at=row.expires_at,
    )


def _copy(row: Row[Any]) -> UpstreamCopy:
    return UpstreamCopy(row.cache_id, row.provider, row.credential, row.upstream_name)


def _dumps(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document).decode()
