"""The small interface every upstream implements, and the optional capabilities some add."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent, Usage
from cometgate.dialects.raw_call import CachedPrefixCall as CachedPrefixCall
from cometgate.dialects.raw_call import RawCall as RawCall
from cometgate.dialects.raw_call import UpstreamCopies as UpstreamCopies
from cometgate.errors import UpstreamError


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: the provider's own model name and the credential to use."""

    upstream_model: str
    model_version: str  # what the caller is told answered (the alias it asked for)
    credential: str | None = None  # resolved secret; never logged
    # The model's translation policy is "strict": refuse, rather than drop, anything the
    # upstream's dialect cannot carry.
    strict: bool = False


class Provider(Protocol):
    name: str

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse: ...

    def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        """Closing the generator early must close the upstream exchange."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SearchesWeb(Protocol):
    """A provider whose upstream runs a web search for the model when a request carries
    `web_search` (a built-in tool); a provider without one must not be sent such a request."""

    def searches_web(self) -> bool: ...


@runtime_checkable
class ServesGeminiTools(Protocol):
    """A provider whose upstream is Google's Gemini API, which runs Gemini's built-in tools
    (URL context, Google Maps grounding, code execution) itself: requests naming them are
    sent as they are."""

    def serves_gemini_tools(self) -> bool: ...


@runtime_checkable
class RunsCode(Protocol):
    """A provider whose upstream runs the model's code itself (a code-execution server tool)
    when a request carries `code_execution`."""

    def runs_code(self) -> bool: ...


@runtime_checkable
class CountsTokens(Protocol):
    """Counts a request's prompt exactly as a generation would count it."""

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int: ...


@runtime_checkable
class ForwardsCount(Protocol):
    """Counts a same-dialect caller's own count request (Gemini `:countTokens`, Anthropic
    `/v1/messages/count_tokens`) by forwarding it; the upstream's answer comes back as it is.
    Separate from `ForwardsRaw`: a provider may forward counts without forwarding generations."""

    dialect: str

    async def forward_count(self, call: RawCall, target: Target) -> RawResponse: ...


@runtime_checkable
class Supervised(Protocol):
    """A provider with a process of its own to start (a local model worker); it may be
    not-yet-ready, and then answers 503 UNAVAILABLE rather than hanging."""

    async def start(self) -> None: ...

    def is_ready(self) -> bool: ...


@runtime_checkable
class KeepsCaches(Protocol):
    """A provider whose upstream holds copies of gateway caches (Gemini's cachedContents),
    so that their expiry follows the gateway's and they go when the cache goes."""

    async def refresh_cached_content(
        self, upstream_name: str, credential: str | None, expire_time: str
    ) -> None: ...

    async def delete_cached_content(self, upstream_name: str, credential: str | None) -> None:
        ...


@dataclass(frozen=True, slots=True)
class RawResponse:
    body: bytes
    content_type: str
    usage: Usage | None  # read from the body for accounting; the body itself is untouched


@dataclass(frozen=True, slots=True)
class RawChunk:
    data: bytes  # exactly the upstream's bytes: one SSE event, or a piece of a JSON array
    usage: Usage | None  # the running usage, when this piece carried it
    # The upstream reported a failure here ({"error":…}); the bytes still reach the caller.
    error: UpstreamError | None = None


@runtime_checkable
class ForwardsRaw(Protocol):
    """Same-dialect pass-through: the fast path and the fidelity path."""

    dialect: str

    async def forward(self, call: RawCall, target: Target) -> RawResponse: ...

    def forward_stream(
        self, call: RawCall, target: Target
    ) -> AsyncGenerator[RawChunk, None]: ...


@dataclass(frozen=True, slots=True)
class UpstreamFile:
    """A file as an upstream's own Files API keeps it."""

    uri: str
    expires_at: datetime | None  # None: the upstream did not say


@runtime_checkable
class UploadsFiles(Protocol):
    """An upstream with a Files API of its own (Gemini): pass-through rewrites a caller's
    reference to a gateway file into a reference to the upstream's copy."""

    async def upload_file(
        self, pieces: AsyncIterator[bytes], *, size: int, mime_type: str, display_name: str,
        target: Target,
    ) -> UpstreamFile: ...
