"""What every outbound codec (a dialect an upstream speaks) offers the HTTP provider.

Pure functions over data: the provider does the I/O, the codec decides the bytes and reads
them back, and classifies failures from structured fields only."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent
from cometgate.dialects.sse_decode import SSEFrame
from cometgate.errors import UpstreamError


@dataclass(frozen=True, slots=True)
class Encoded:
    """A request body ready for orjson, and what the translation could not carry
    ("canonical.path: reason" entries, for the pipeline to report; empty when nothing was
    lost)."""

    body: dict[str, Any]
    dropped: tuple[str, ...] = ()
    # Headers this request needs beyond the codec's own (Anthropic's `anthropic-beta` for a
    # beta tool the request uses), as (lower-case name, value) pairs.
    headers: tuple[tuple[str, str], ...] = ()


class OutboundCodec(Protocol):
    def path(self, upstream_model: str, *, stream: bool) -> str:
        """The request path (and query) relative to the provider's base URL."""
        ...

    def headers(self, credential: str | None, *, stream: bool) -> dict[str, str]:
        """Content type, accept and authentication headers in this dialect's style."""
        ...

    def encode_request(
        self, request: GenerateRequest, upstream_model: str, *, stream: bool
    ) -> Encoded: ...

    def decode_response(
        self, body: bytes, request: GenerateRequest, model_version: str
    ) -> GenerateResponse: ...

    def decode_stream(
        self, frames: AsyncIterator[SSEFrame], request: GenerateRequest, model_version: str
    ) -> AsyncGenerator[StreamEvent, None]: ...

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> UpstreamError: ...
