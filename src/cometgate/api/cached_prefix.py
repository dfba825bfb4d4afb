"""The one hook where a Gemini request's `cachedContent` is applied, before the pipeline.

The caller's body becomes the body Google would run (the cache's prefix in front, see
dialects/gemini/cached_content), so every upstream can serve it; the request also carries a
`PromptCache` marker (translated upstreams put their own cache markers on the prefix) and, for
a Gemini upstream, a `CachedPrefixCall` (the upstream keeps a copy and the request names it).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from cometgate.canonical import PromptCache
from cometgate.dialects.gemini.cached_content import (
    cache_id_of,
    cache_reference,
    model_mismatch,
    not_found,
    rfc3339,
    with_cached_prefix,
)
from cometgate.dialects.gemini.caller_request import read_json_object
from cometgate.errors import RequestRejected
from cometgate.providers.base import CachedPrefixCall
from cometgate.storage.cached_contents import CachedContentStore, CacheNotFoundError, StoredCache
from cometgate.storage.keys import KeyRecord

_INNER = ("generateContentRequest", "generate_content_request")


@dataclass(frozen=True, slots=True)
class AppliedCache:
    body: bytes  # the caller's body with the cache's prefix in front
    prompt_cache: PromptCache
    upstream: CachedPrefixCall | None  # None for a count: it carries the prefix itself


def prompt_cache_key(cache_id: str) -> str:
    """A stable name of the prefix for upstreams' own prompt caches (OpenAI's
    prompt_cache_key): one cache, one name."""
    return f"cometgate-cache-{cache_id}"


class CachedPrefixes:
    def __init__(self, store: CachedContentStore) -> None:
        self._store = store

    async def apply(self, key: KeyRecord, model: str, body: bytes, method: str
                    ) -> AppliedCache | None:
        """None when the body names no cache (most requests: they are not parsed here)."""
        if b"cachedContent" not in body and b"cached_content" not in body:
            return None
        document = read_json_object(body)
        if method == "countTokens":
            return await self._apply_to_count(key, model, document)
        name = cache_reference(document)
        if name is None:
            return None
        cache = await self._cache(key, model, name)
        merged = with_cached_prefix(document, cache.body)
        upstream = CachedPrefixCall(cache.id, cache.body, rfc3339(cache.expires_at),
                                    self._store)
        return AppliedCache(orjson.dumps(merged), _marker(cache), upstream)

    async def size(self, key: KeyRecord, body: bytes) -> int:
        """The tokens of the cache a generation names, for its admission estimate: 0 when it
        names none, or one this key cannot use (`apply` refuses that, after admission, so
        that a key that may not send `cachedContent` hears that first)."""
        if b"cachedContent" not in body and b"cached_content" not in body:
            return 0
        try:
            name = cache_reference(read_json_object(body))
            if name is None:
                return 0
            return (await self._store.get(cache_id_of(name), key.id)).total_tokens
        except (RequestRejected, CacheNotFoundError):
            return 0

    async def _apply_to_count(self, key: KeyRecord, model: str, document: dict[str, object]
                              ) -> AppliedCache | None:
        """countTokens names a cache inside its generateContentRequest."""
        field = next((name for name in _INNER if isinstance(document.get(name), dict)), None)
        if field is None:
            return None
        inner = document[field]
        assert isinstance(inner, dict)
        name = cache_reference(inner)
        if name is None:
            return None
        cache = await self._cache(key, model, name)
        merged = {**document, field: with_cached_prefix(inner, cache.body)}
        return AppliedCache(orjson.dumps(merged), _marker(cache), None)

    async def _cache(self, key: KeyRecord, model: str, name: str) -> StoredCache:
        try:
            cache = await self._store.get(cache_id_of(name), key.id)
        except CacheNotFoundError:
            raise not_found() from None
        if cache.model != model:
            raise model_mismatch(model, cache.model)
        return cache


def _marker(cache: StoredCache) -> PromptCache:
    return PromptCache(prompt_cache_key(cache.id), len(cache.body.get("contents", [])))
