"""Who is calling: the API key, taken from where real clients put it.

Order (gemini-wire.md §a): `x-goog-api-key` (all Google SDKs), then `?key=` (raw REST
clients), then `x-api-key` (Anthropic's clients), then `Authorization: Bearer` (the OpenAI
SDK and aggregator-style clients). Keys never reach a log line:
the access log writes the path without its query string.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request

from cometgate.api.key_cache import KeyCache
from cometgate.errors import ApiKeyInvalid, KeyMissing
from cometgate.key_access import check_key
from cometgate.storage.keys import KeyRecord, KeyRepository


def presented_key(request: Request) -> str | None:
    headers = request.headers
    key = (headers.get("x-goog-api-key") or request.query_params.get("key")
           or headers.get("x-api-key"))
    if not key:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = token if scheme.lower() == "bearer" else None
    key = key.strip() if key else None  # google-genai strips whitespace from keys too
    return key or None


class KeyAuthenticator:
    """Checks keys against storage, trusting each answer for `cache_seconds` so that the hot
    path does not read the database on every request (see KeyCache: an expired answer is
    re-read behind the requests it still serves). A revocation therefore takes effect within
    that window and one database read."""

    def __init__(
        self,
        keys: KeyRepository,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache: KeyCache[KeyRecord | None] = KeyCache(
            keys.authenticate, ttl=cache_seconds, clock=clock)

    async def authenticate(self, request: Request) -> KeyRecord:
        key = presented_key(request)
        if key is None:
            raise KeyMissing()
        record = await self._lookup(key)
        if record is None:
            raise ApiKeyInvalid()
        # Here rather than at admission only: an expired key reads no models and no balance.
        check_key(record, datetime.now(UTC))
        return record

    async def _lookup(self, key: str) -> KeyRecord | None:
        # Cached by digest, so the memory holds no key in the clear.
        return await self._cache.get(hashlib.sha256(key.encode()).hexdigest(), key)
