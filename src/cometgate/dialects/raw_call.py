"""A caller's request in its own dialect, as a same-dialect upstream receives it. Its caller
codec builds it (dialects/caller_codec) and a forwarding provider sends it; it lives here,
below both, so that a codec needs nothing of providers/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class UpstreamCopies(Protocol):
    """Where the copies a same-dialect upstream holds of a gateway cache are remembered, one
    per cache, provider and credential (`credential` is a fingerprint, never the secret)."""

    async def copy_of(self, cache_id: str, provider: str, credential: str) -> str | None: ...

    async def remember_copy(
        self, cache_id: str, provider: str, credential: str, upstream_name: str
    ) -> bool:
        """False when another request remembered one first (that one is then used)."""
        ...

    async def forget_copy(self, cache_id: str, provider: str, credential: str) -> None:
        """The upstream no longer has it (it expired or was deleted there)."""
        ...


@dataclass(frozen=True, slots=True)
class CachedPrefixCall:
    """A Gemini caller's request naming a gateway cache, for an upstream with caches of its
    own: the upstream keeps the prefix once (`prefix`: the CachedContent fields to create it
    with) and the request names that copy instead of carrying the prefix. The RawCall's body
    already holds the prefix in front, for an upstream that cannot keep it."""

    cache_id: str
    prefix: Mapping[str, Any]  # contents, systemInstruction, tools, toolConfig
    expire_time: str  # RFC 3339, the cache's own expiry
    copies: UpstreamCopies


@dataclass(frozen=True, slots=True)
class RawCall:
    """A caller's request in its own dialect, for an upstream of that same dialect."""

    body: bytes  # forwarded byte for byte (Gemini), or but for the model (Anthropic)
    version: str  # the caller's API version path segment ("v1beta", "v1" or ""), preserved
    # "generateContent" | "streamGenerateContent" | "countTokens" | "chat" | "messages"
    method: str
    alt: str | None = None  # for streams: "sse", or None for the JSON-array framing
    # The body already parsed, for dialects whose body names the model (OpenAI, Anthropic):
    # the forwarder rewrites that one field.
    document: Mapping[str, Any] | None = None
    stream: bool = False
    # Caller headers that the dialect itself defines and its upstream reads
    # (anthropic-version, anthropic-beta), as (lower-case name, value) pairs.
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""  # the caller's query string, for dialects whose query carries meaning
    cache: CachedPrefixCall | None = None  # a gateway cache the call uses (Gemini only)
