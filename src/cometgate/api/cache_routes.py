"""Gemini `cachedContents` as google-genai and @google/genai call them (`client.caches`):

    POST   /v1beta/cachedContents              create (model, contents, systemInstruction,
                                               tools, toolConfig, ttl | expireTime, displayName)
    GET    /v1beta/cachedContents              list the key's caches (pageSize, pageToken)
    GET    /v1beta/cachedContents/{id}         one cache, without its contents (as Google)
    PATCH  /v1beta/cachedContents/{id}         a new ttl or expireTime, nothing else
    DELETE /v1beta/cachedContents/{id}

A cache belongs to the key that made it and to one model. Its size is the model's own count
(the upstream's exact count where one exists; the gateway's estimate for an upstream that
cannot count); a model may declare a minimum (`cache_min_tokens`). Copies that Gemini
upstreams hold of it follow its expiry and go with it; the sweep removes expired caches.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.entrance import Entrance
from cometgate.dialects.gemini.cached_content import (
    CacheDraft,
    decode_create,
    decode_update,
    encode_cache,
    not_found,
    rfc3339,
    too_small,
)
from cometgate.dialects.gemini.caller_request import (
    decode_count_tokens_request,
    decode_generate_request,
    read_json_object,
)
from cometgate.dialects.gemini.estimate import estimate
from cometgate.errors import InvalidRequest, NotFound, RequestRejected
from cometgate.pipeline import Call
from cometgate.providers.base import KeepsCaches, RawCall
from cometgate.providers.gemini_caches import credential_fingerprint
from cometgate.storage.cached_contents import (
    CachedContentStore,
    CacheNotFoundError,
    NewCache,
    StoredCache,
    UpstreamCopy,
)
from cometgate.storage.keys import KeyRecord
from cometgate.storage.periodic import Periodic

log = logging.getLogger("cometgate.api")

JSON_TYPE = "application/json; charset=UTF-8"
VERSIONS = ("/v1beta", "/v1", "")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Expired caches are invisible at once; the sweep frees their space and their upstream copies
# (which also expire upstream by themselves at the same time).
CACHE_SWEEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class CacheApi:
    entrance: Entrance
    store: CachedContentStore

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in VERSIONS:
            routes.append(Route(f"{prefix}/cachedContents", self.collection,
                                methods=["GET", "POST"]))
            routes.append(Route(f"{prefix}/cachedContents/{{cache_id}}", self.one,
                                methods=["GET", "PATCH", "DELETE"]))
        return routes

    async def collection(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        if request.method == "POST":
            return _json(await self.create(request, key))
        return _json(await self.list(request, key))

    async def one(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        cache_id = request.path_params["cache_id"]
        if request.method == "GET":
            return _json(_encoded(await self._get(cache_id, key)))
        if request.method == "PATCH":
            return _json(await self.update(request, key, cache_id))
        await self.delete(cache_id, key)
        return _json({})

    async def create(self, request: Request, key: KeyRecord) -> dict[str, Any]:
        document = read_json_object(await self.entrance.body(request))
        now = self.store.now()
        draft = decode_create(document, now)
        info = self.entrance.model_for(key, draft.model)
        if info is None or "generateContent" not in info.generation_methods:
            raise NotFound(
                f"models/{draft.model} is not found for API version v1beta, or is not "
                "supported for createCachedContent. Call ListModels to see the list of "
                "available models and their supported methods.")
        self.entrance.check_access(request, key, info)
        total = await self._count(draft, info.id)
        if info.cache_min_tokens is not None and total < info.cache_min_tokens:
            raise too_small(total, info.cache_min_tokens)
        await self.entrance.meter.charge_storage(
            key, info.id, request_id=_request_id(request), tokens=total,
            held=draft.expires_at - now)
        stored = await self.store.put(NewCache(
            id=secrets.token_hex(8), key_id=key.id, model=info.id,
            display_name=draft.display_name, body=draft.prefix, total_tokens=total,
            expires_at=draft.expires_at), now=now)
        return _encoded(stored)

    async def list(self, request: Request, key: KeyRecord) -> dict[str, Any]:
        size = _page_size(request.query_params.get("pageSize"))
        after = _after(request.query_params.get("pageToken"))
        page = await self.store.page(key.id, size=size, after=after)
        answer: dict[str, Any] = {}
        if page.caches:
            answer["cachedContents"] = [_encoded(cache) for cache in page.caches]
        if page.next_after is not None:
            answer["nextPageToken"] = base64.urlsafe_b64encode(page.next_after.encode()).decode()
        return answer

    async def update(self, request: Request, key: KeyRecord, cache_id: str) -> dict[str, Any]:
        document = read_json_object(await self.entrance.body(request))
        now = self.store.now()
        expires_at = decode_update(document, request.query_params.get("updateMask"), now)
        before = await self._get(cache_id, key)
        # Only the time added is bought; a shorter life is not refunded.
        await self.entrance.meter.charge_storage(
            key, before.model, request_id=_request_id(request), tokens=before.total_tokens,
            held=expires_at - max(before.expires_at, now))
        try:
            stored = await self.store.set_expiry(cache_id, key.id, expires_at, now=now)
        except CacheNotFoundError:
            raise not_found() from None
        for copy in await self.store.copies(cache_id):
            await self._on_upstream(copy, rfc3339(expires_at))
        return _encoded(stored)

    async def delete(self, cache_id: str, key: KeyRecord) -> None:
        try:
            copies = await self.store.delete(cache_id, key.id)
        except CacheNotFoundError:
            raise not_found() from None
        for copy in copies:
            await self._on_upstream(copy, None)

    async def sweep_once(self) -> int:
        """Expired caches removed, with their upstream copies; how many copies went."""
        copies = await self.store.purge_expired()
        for copy in copies:
            await self._on_upstream(copy, None)
        return len(copies)

    async def _get(self, cache_id: str, key: KeyRecord) -> StoredCache:
        try:
            return await self.store.get(cache_id, key.id)
        except CacheNotFoundError:
            raise not_found() from None

    async def _count(self, draft: CacheDraft, model: str) -> int:
        """The prefix's size as the model counts it. Its contents are checked as a request's
        would be; an upstream that cannot count exactly gets the gateway's estimate."""
        inner = {"model": f"models/{model}", **draft.prefix}
        if draft.prefix.get("contents"):
            decode_generate_request(orjson.dumps(inner), model)
        else:  # a prefix of instructions alone: counted with an empty turn after it
            inner["contents"] = [{"role": "user", "parts": [{"text": " "}]}]
        body = orjson.dumps({"generateContentRequest": inner})
        call = Call(model, dialect="gemini",
                    decode=lambda: decode_count_tokens_request(body, model),
                    raw=RawCall(body=body, version="v1beta", method="countTokens"))
        try:
            outcome = await self.entrance.gateway.count_tokens(call)
        except RequestRejected:
            return estimate(orjson.dumps(draft.prefix))[0]
        if outcome.raw is not None:
            return int(orjson.loads(outcome.raw.body).get("totalTokens", 0))
        return outcome.total or 0

    async def _on_upstream(self, copy: UpstreamCopy, expire_time: str | None) -> None:
        """Refresh (an expiry) or delete (None) a copy on its upstream. A failure is logged:
        the copy expires upstream by itself at its last expiry."""
        provider, secrets_used = self.entrance.gateway.provider_secrets(copy.provider)
        if not isinstance(provider, KeepsCaches):
            return
        fingerprint = copy.credential.partition(":")[0]
        secret = next((s for s in secrets_used if credential_fingerprint(s) == fingerprint),
                      None)
        try:
            if expire_time is None:
                await provider.delete_cached_content(copy.upstream_name, secret)
            else:
                await provider.refresh_cached_content(copy.upstream_name, secret, expire_time)
        except Exception:  # network trouble upstream must not fail the caller's own change
            log.warning("cache copy %s on %s: upstream call failed", copy.upstream_name,
                        copy.provider, exc_info=True)


class CacheSweep:
    """Removes expired caches every interval (they are invisible from expiry on anyway)."""

    def __init__(self, api: CacheApi, interval_seconds: float) -> None:
        self._api = api
        self._periodic = Periodic("cache-sweep", self._round, interval_seconds)

    def start(self) -> None:
        self._periodic.start()

    async def aclose(self) -> None:
        await self._periodic.aclose()

    async def _round(self) -> None:
        try:
            await self._api.sweep_once()
        except Exception:  # the next round retries
            log.exception("sweeping expired cached contents failed")


def _request_id(request: Request) -> str:
    return str(request.scope["state"]["request_id"])


def _encoded(cache: StoredCache) -> dict[str, Any]:
    return encode_cache(cache_id=cache.id, model=cache.model, display_name=cache.display_name,
                        total_tokens=cache.total_tokens, created_at=cache.created_at,
                        updated_at=cache.updated_at, expires_at=cache.expires_at)


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise InvalidRequest(f"Invalid value at 'page_size' (TYPE_INT32), \"{value}\"") from None
    return min(size, MAX_PAGE_SIZE) if size > 0 else DEFAULT_PAGE_SIZE


def _after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("Invalid page token.",
                             violations={"page_token": "not a token this list gave"}) from None


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type=JSON_TYPE)
