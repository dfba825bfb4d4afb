"""The caller side of a dialect as one object: how the request frame (api/frame) reads a
caller's generate request and writes its answer, whatever the dialect. Each caller dialect
has one `InboundCodec` in its own folder (`caller_codec.py`), registered in
dialects/caller_codecs.

A codec is pure: it sees the caller's bytes, path, query and headers as values, never the
HTTP request, and it does no I/O. What the frame does with the request (who calls, their
limits, which upstream, the usage record) is the same for every dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent
from cometgate.canonical.refusals import Refusal
from cometgate.dialects.billable import NOTHING_BILLABLE, Billable
from cometgate.dialects.raw_call import RawCall
from cometgate.errors import GatewayError, InvalidRequest

RefusalWords = Callable[[Refusal], InvalidRequest]


@dataclass(frozen=True, slots=True)
class CallerRequest:
    """What a codec may read of the HTTP request."""

    body: bytes
    path: str  # the URL path, as sent
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive, as the server hands them over
    path_model: str | None = None  # the model the path names (Gemini), else None
    method: str = ""  # the path's method suffix (Gemini: "generateContent", …)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One generate request, read once by its codec: what admission, routing and the answer
    need, without decoding it into the canonical model (only a translation does, once)."""

    model: str
    stream: bool
    estimate: tuple[int, int | None]  # (prompt tokens, the caller's output limit or None)
    decode: Callable[[], GenerateRequest]
    words: RefusalWords | None  # a model's refusals in the caller's words (None: Gemini's)
    forward: RawCall | None = None  # the caller's request for a same-dialect upstream
    billable: Billable = NOTHING_BILLABLE
    # A fault found while reading that the caller hears only once admitted (so it is
    # recorded like any refused generation).
    refusal: GatewayError | None = None
    # What else the dialect's answer needs to know of the request (OpenAI's include_usage,
    # Gemini's stream framing), opaque to the frame.
    options: Mapping[str, object] = field(default_factory=dict)


class StreamEncoder(Protocol):
    """Canonical events → the bytes of one dialect's stream, in order."""

    def feed(self, event: StreamEvent) -> Iterable[bytes]: ...

    def end(self) -> Iterable[bytes]: ...

    def fail(self, err: GatewayError) -> Iterable[bytes]:
        """The last bytes of a stream that broke after it started."""
        ...


class ForwardedFraming(Protocol):
    """How a same-dialect upstream's stream says it finished, and how it reports a failure."""

    def is_final(self, data: bytes) -> bool: ...

    def error(self, err: GatewayError, *, opened: bool) -> bytes:
        """The bytes that end a broken stream; `opened` tells whether content went out."""
        ...


class InboundCodec(Protocol):
    """One caller dialect. The frame calls, in order: `path_model` and `read` (after the
    key is known; the caller's key is found the same way for every dialect, api/auth),
    `unknown_model` if the model is not served, then for the answer `encode_answer`, or
    `stream_encoder` / `framing` for a stream, and `encode_error` for any failure."""

    @property
    def dialect(self) -> str:
        """As usage records, traces and refusals name it."""
        ...

    @property
    def error_dialect(self) -> str:
        """The envelope its errors are written in (the Responses API shares OpenAI's)."""
        ...

    @property
    def json_type(self) -> str: ...

    @property
    def names_upstream_model(self) -> bool:
        """Whether answers carry the header naming the upstream's own model."""
        ...

    def path_model(self, path_params: Mapping[str, str]) -> tuple[str | None, str]:
        """(the model the path names, or None when the body names it; the path's method)."""
        ...

    def read(self, caller: CallerRequest) -> Inbound:
        """The request, or the dialect's own refusal of what it cannot read."""
        ...

    def unknown_model(self, name: str, caller: CallerRequest) -> GatewayError:
        """The dialect's own "not found" for a model the gateway does not serve."""
        ...

    def serves(self, generation_methods: tuple[str, ...], caller: CallerRequest) -> bool:
        """Whether a model with these methods answers this request (else `unknown_model`)."""
        ...

    def encode_answer(self, response: GenerateResponse, inbound: Inbound) -> bytes: ...

    def forwarded_type(self, content_type: str) -> str:
        """The media type of a forwarded whole answer whose upstream sent `content_type`."""
        ...

    def stream_type(self, inbound: Inbound) -> str: ...

    def stream_encoder(self, inbound: Inbound) -> StreamEncoder: ...

    def framing(self, inbound: Inbound) -> ForwardedFraming:
        """How a forwarded stream of this dialect ends."""
        ...

    def caller_path(self, canonical: str) -> str:
        """A canonical field path as the caller named it (for the dropped-fields header)."""
        ...

    def encode_error(self, error: GatewayError, *, model: str | None,
                     request_id: str | None) -> tuple[int, bytes]:
        """(HTTP status, body) of a failure, in the dialect's own envelope."""
        ...


class BodyNamesModel:
    """What the JSON-over-SSE dialects (OpenAI chat, Anthropic, Responses) share: the body
    names the model, any model is theirs to ask (one that does not generate is refused by
    the pipeline, in the dialect's words), whole answers are JSON and streams SSE."""

    json_type = "application/json"

    def path_model(self, path_params: Mapping[str, str]) -> tuple[str | None, str]:
        return None, ""

    def serves(self, generation_methods: tuple[str, ...], caller: CallerRequest) -> bool:
        return True

    def forwarded_type(self, content_type: str) -> str:
        return self.json_type

    def stream_type(self, inbound: Inbound) -> str:
        return "text/event-stream"
