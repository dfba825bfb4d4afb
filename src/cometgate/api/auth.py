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
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from cometgate.errors import ApiKeyExpired, ApiKeyInvalid, KeyMissing
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


@dataclass(frozen=True, slots=True)
class _Cached:
    record: KeyRecord | None
    expires: float


class KeyAuthenticator:
    """Checks keys against storage, trusting each answer for `cache_seconds` so that the hot
    path does not read the database on every request. A revocation therefore takes effect
    within that window."""

    def __init__(
        self,
        keys: KeyRepository,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}  # sha256 of the key → lookup result

    async def authenticate(self, request: Request) -> KeyRecord:
        key = presented_key(request)
        if key is None:
            raise KeyMissing()
        record = await self._lookup(key)
        if record is None or record.revoked_at is not None:
            raise ApiKeyInvalid()
        # Here rather than at admission only: an expired key reads no models and no balance.
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            raise ApiKeyExpired()
        return record

    async def _lookup(self, key: str) -> KeyRecord | None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached.expires > now:
            return cached.record
        record = await self._keys.authenticate(key)
        if len(self._cache) > 10_000:  # bound memory against floods of random keys
            self._cache.clear()
        self._cache[digest] = _Cached(record, now + self._ttl)
        return record
