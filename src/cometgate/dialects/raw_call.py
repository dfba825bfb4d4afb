"""A caller's request in its own dialect, as a same-dialect upstream receives it. Its caller
codec builds it (dialects/inbound_codec) and a forwarding provider sends it; it lives here,
below both, so that a codec needs nothing of providers/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
