"""A Gemini upstream's own cachedContents, holding the prefixes of gateway caches.

The first request that uses a gateway cache through a provider and credential creates the
copy upstream (with the cache's own expiry) and remembers its name; later requests name that
copy instead of sending the prefix, so the upstream serves it from its cache and reports
`cachedContentTokenCount`. Where the upstream refuses to keep the prefix (Google's minimum
size, a model without caching), the request carries the prefix itself, as it would anywhere.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import orjson

from cometgate.dialects.gemini.upstream_errors import classify_error
from cometgate.errors import FailureClass, UpstreamError
from cometgate.providers.base import RawCall, Target
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Transport

log = logging.getLogger("cometgate.providers")
T = TypeVar("T")
# What Google answers a request naming a cachedContent it no longer has.
_GONE = (403, 404)


def _naming(body: bytes, prefix: Mapping[str, Any], name: str) -> bytes:
    """The forwarded body (the prefix in front, gateway files already made the upstream's
    own) with the prefix taken out again and the upstream's copy named in its place."""
    document = orjson.loads(body)
    own = {key: value for key, value in document.items()
           if key not in ("systemInstruction", "tools", "toolConfig")}
    own["contents"] = document.get("contents", [])[len(prefix.get("contents", [])):]
    own["cachedContent"] = name
    return orjson.dumps(own)


def credential_fingerprint(secret: str | None) -> str:
    """Names a credential in storage without keeping it: the same secret, the same name."""
    return hashlib.sha256((secret or "").encode()).hexdigest()[:24]


class GeminiCacheCopies:
    """Creates, refreshes and deletes copies on one Gemini upstream (`base_url` its root)."""

    def __init__(self, provider: str, base_url: str, transport: Transport, timeouts: Timeouts,
                 headers: Callable[[str | None], dict[str, str]],
                 client: httpx.AsyncClient | None = None) -> None:
        self._provider, self._base_url = provider, base_url
        self._transport, self._timeouts = transport, timeouts
        self._headers = headers  # a target's credential (None: the provider's own) → headers
        self._client = client
        self._owns_client = client is None

    async def sent(self, call: RawCall, target: Target,
                   send: Callable[[bytes], Awaitable[T]]) -> T:
        """`send(body)`, the body naming the upstream copy when there is (or can be) one,
        else the caller's body with the prefix in front. A copy the upstream no longer has
        (expired or deleted there) is forgotten, and the prefix itself is sent instead; the
        next request makes a new copy."""
        use = call.cache
        if use is None:
            return await send(call.body)
        credential = f"{credential_fingerprint(target.credential)}:{target.upstream_model}"
        name = await self._copy_name(call, target, credential)
        if name is None:
            return await send(call.body)
        try:
            return await send(_naming(call.body, use.prefix, name))
        except UpstreamError as exc:
            if exc.upstream_status not in _GONE:
                raise
        log.info("provider %s no longer has %s; the prefix goes with the request",
                 self._provider, name)
        await use.copies.forget_copy(use.cache_id, self._provider, credential)
        return await send(call.body)

    async def _copy_name(self, call: RawCall, target: Target, credential: str) -> str | None:
        use = call.cache
        assert use is not None
        name = await use.copies.copy_of(use.cache_id, self._provider, credential)
        if name is not None:
            return name
        name = await self._created(call, target)
        if name is None:
            return None
        if await use.copies.remember_copy(use.cache_id, self._provider, credential, name):
            return name
        await self.delete_cached_content(name, target.credential)
        return await use.copies.copy_of(use.cache_id, self._provider, credential)

    async def _created(self, call: RawCall, target: Target) -> str | None:
        assert call.cache is not None
        model = target.upstream_model
        document = {"model": model if model.startswith("models/") else f"models/{model}",
                    **call.cache.prefix, "expireTime": call.cache.expire_time}
        try:
            answer, _ = await self._transport.exchange(
                f"{self._base_url}/v1beta/cachedContents", orjson.dumps(document),
                self._with_key(target.credential), classify_error)
        except UpstreamError as exc:
            if exc.failure_class is not FailureClass.CALLER_FAULT:
                raise
            log.info("provider %s keeps no copy of cache %s: %s", self._provider,
                     call.cache.cache_id, exc.message)
            return None
        name = orjson.loads(answer).get("name")
        return name if isinstance(name, str) and name else None

    async def refresh_cached_content(
        self, upstream_name: str, credential: str | None, expire_time: str
    ) -> None:
        response = await self._http().patch(
            f"{self._base_url}/v1beta/{upstream_name}", params={"updateMask": "expireTime"},
            content=orjson.dumps({"expireTime": expire_time}),
            headers=self._with_key(credential))
        self._logged(response, "refresh", upstream_name)

    async def delete_cached_content(self, upstream_name: str, credential: str | None) -> None:
        response = await self._http().delete(f"{self._base_url}/v1beta/{upstream_name}",
                                             headers=self._with_key(credential))
        self._logged(response, "delete", upstream_name)

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        # Management calls are rare and not on the request path: a small client of their own
        # (the shared transport only POSTs).
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeouts.total)
        return self._client

    def _with_key(self, credential: str | None) -> dict[str, str]:
        return self._headers(credential)

    def _logged(self, response: httpx.Response, action: str, name: str) -> None:
        # The upstream copy expires on its own by then at the latest: a failure is logged,
        # not the caller's to hear about.
        if response.status_code >= 400 and response.status_code != 404:
            log.warning("provider %s: %s of %s failed with %d", self._provider, action, name,
                        response.status_code)
