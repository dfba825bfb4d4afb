"""A Gemini-dialect upstream (Google's API, or another Gemini-compatible gateway). Gemini
callers reach it by same-dialect pass-through: the caller's body bytes go upstream unchanged,
and the upstream's bytes come back unchanged but for `modelVersion`, which names the model as
the caller asked for it; only the model in the URL and the credential are rewritten. Callers
of other dialects reach it through the Gemini outbound codec, their token counts through
`:countTokens`, and embeddings through `:batchEmbedContents`.

Unknown fields are forwarded, not refused: the upstream validates them, and a field the
gateway does not know yet keeps working. The answer is still read, cheaply, for usage; an
`{"error":…}` event inside a stream is forwarded like any other (the dialect's
`stream_error_event` recognises it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from urllib.parse import urlencode

import httpx
import orjson

from cometgate.canonical import (
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    StreamEvent,
)
from cometgate.dialects.gemini.passthrough import ArrayPieces, renamed
from cometgate.dialects.gemini.upstream_codec import GeminiCodec
from cometgate.dialects.gemini.upstream_count import encode_count_request, read_total_tokens
from cometgate.dialects.gemini.upstream_errors import (
    check_first_event,
    classify_error,
    stream_error_event,
    usage_from_event,
    usage_from_response,
    usage_of_forwarded,
)
from cometgate.dialects.sse_split import SSEEventSplitter
from cometgate.dialects.upstream_answers import unreadable
from cometgate.providers.base import RawCall, RawChunk, RawResponse, Target, UpstreamFile
from cometgate.providers.embedding import GeminiEmbedder
from cometgate.providers.gemini_caches import GeminiCacheCopies
from cometgate.providers.gemini_files import upload_file
from cometgate.providers.http import HttpProvider
from cometgate.providers.timeouts import Timeouts
from cometgate.providers.transport import Transport

_VERSION = re.compile(r"[A-Za-z0-9]*")
_METHOD = re.compile(r"[A-Za-z]+")
_MODEL_PREFIXES = ("models/", "tunedModels/")


class GeminiProvider:
    """`base_url` is the server root (https://generativelanguage.googleapis.com, or
    http://gateway/prefix); the caller's API version follows it. The credential of a Target
    wins over `api_key`. The caller's own key is never forwarded: only the body is."""

    dialect = "gemini"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        timeouts: Timeouts,
        client: httpx.AsyncClient | None = None,
        max_connections: int = 100,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._transport = Transport(timeouts, client=client, max_connections=max_connections)
        # Callers of other dialects reach the same upstream, over the same connection pool,
        # through the Gemini codec (with a stand-in signature for their unsigned function
        # calls, which Gemini 3 requires).
        self._codec = GeminiCodec("v1beta", vouch_unsigned_calls=True)
        self._translating = HttpProvider(
            name, base_url=self._base_url, api_key=api_key, timeouts=timeouts,
            codec=self._codec, transport=self._transport,
        )
        self._embedder = GeminiEmbedder(self._base_url, api_key, timeouts,
                                        transport=self._transport)
        self._caches = GeminiCacheCopies(
            name, self._base_url, self._transport, timeouts,
            lambda credential: self._codec.headers(credential or api_key, stream=False),
            client=client)

    def searches_web(self) -> bool:
        return True  # Google Search grounding (upstream_request)

    def serves_gemini_tools(self) -> bool:
        return True  # Google's own API; a translated request carries them (upstream_request)

    def runs_code(self) -> bool:
        return True  # Gemini's codeExecution tool, carried back among the built-in tools

    async def forward(self, call: RawCall, target: Target) -> RawResponse:
        """The whole answer; a 2xx body that is no answer raises (see usage_of_forwarded)."""
        url, request_headers = self._url(call, target), self._headers(target)
        body, headers = await self._caches.sent(
            call, target,
            lambda content: self._transport.exchange(url, content, request_headers,
                                                     classify_error))
        content_type = headers.get("content-type", "application/json")
        usage = usage_of_forwarded(body, call.method)  # refuses a malformed answer first
        return RawResponse(renamed(body, target.model_version), content_type, usage)

    async def forward_stream(
        self, call: RawCall, target: Target
    ) -> AsyncGenerator[RawChunk, None]:
        """Pieces as they arrive. An error status raises before anything is yielded, so the
        pipeline can still fail over; a transport failure later raises the transient
        UpstreamError of the Transport. Closing the generator early closes the upstream
        response, so the upstream stops generating for a caller who has gone."""
        framing = _sse_chunks if call.alt == "sse" else _array_chunks
        url, headers = self._url(call, target), self._headers(target)

        async def opened(content: bytes) -> AsyncGenerator[bytes, None]:
            # The status arrives with the first piece: a refusal raises here, where the copy
            # it may be about can still be replaced by the prefix.
            return await _started(self._transport.stream(url, content, headers, classify_error))

        chunks = (self._transport.stream(url, call.body, headers, classify_error)
                  if call.cache is None  # the pass-through fast path: no layer added
                  else await self._caches.sent(call, target, opened))
        async with aclosing(chunks), aclosing(framing(chunks, target.model_version)) as pieces:
            async for piece in pieces:
                yield piece

    async def upload_file(
        self, pieces: AsyncIterator[bytes], *, size: int, mime_type: str, display_name: str,
        target: Target,
    ) -> UpstreamFile:
        """A copy of a gateway file in this upstream's Files API (see UploadsFiles)."""
        return await upload_file(self._transport, self._base_url, self._headers(target),
                                 pieces, size=size, mime_type=mime_type,
                                 display_name=display_name)

    async def forward_count(self, call: RawCall, target: Target) -> RawResponse:
        """A Gemini caller's `:countTokens`: the method travels in the path, so it is a
        forward like any other."""
        return await self.forward(call, target)

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int:
        """Another dialect's count, through `:countTokens` with the whole translated
        request, so that its system instruction and tools count too."""
        body = encode_count_request(request, target.upstream_model,
                                    vouch_unsigned_calls=self._codec.vouch_unsigned_calls)
        url = self._base_url + self._codec.method_path(target.upstream_model, "countTokens")
        answer, _ = await self._transport.exchange(
            url, orjson.dumps(body), self._headers(target), classify_error)
        return read_total_tokens(answer)

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        return await self._translating.generate(request, target)

    def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        return self._translating.stream(request, target)

    async def embed(self, request: EmbedRequest, target: Target) -> EmbedResponse:
        return await self._embedder.embed(request, target)

    async def refresh_cached_content(
        self, upstream_name: str, credential: str | None, expire_time: str
    ) -> None:
        await self._caches.refresh_cached_content(upstream_name, credential, expire_time)

    async def delete_cached_content(self, upstream_name: str, credential: str | None) -> None:
        await self._caches.delete_cached_content(upstream_name, credential)

    async def aclose(self) -> None:
        await self._caches.aclose()
        await self._transport.aclose()  # the translating half shares it

    def _url(self, call: RawCall, target: Target) -> str:
        # The version and method become path segments: only plain words may.
        if not _VERSION.fullmatch(call.version) or not _METHOD.fullmatch(call.method):
            raise ValueError(f"not a Gemini API call: {call.version!r}, {call.method!r}")
        model = target.upstream_model
        if not model.startswith(_MODEL_PREFIXES):
            model = "models/" + model
        version = f"/{call.version}" if call.version else ""
        query = f"?{urlencode({'alt': call.alt})}" if call.alt else ""
        return f"{self._base_url}{version}/{model}:{call.method}{query}"

    def _headers(self, target: Target) -> dict[str, str]:
        return self._codec.headers(target.credential or self._api_key, stream=False)


async def _started(chunks: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    """`chunks` with its first piece already read (closed if that fails)."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        return _replayed(None, chunks)
    except BaseException:
        await chunks.aclose()
        raise
    return _replayed(first, chunks)


async def _replayed(first: bytes | None, rest: AsyncGenerator[bytes, None]
                    ) -> AsyncGenerator[bytes, None]:
    async with aclosing(rest):
        if first is not None:
            yield first
        async for chunk in rest:
            yield chunk


async def _sse_chunks(
    chunks: AsyncIterator[bytes], model: str
) -> AsyncGenerator[RawChunk, None]:
    """One RawChunk per event, as soon as its blank line arrives; whatever trails the last
    event (an event without its blank line, a raw JSON error) comes last, as received."""
    events = SSEEventSplitter()
    first = True
    async for piece in chunks:
        for event in events.feed(piece):
            if first:
                check_first_event(event)
                first = False
            yield _event_chunk(event, model)
    rest = events.close()
    if rest:
        if first:
            check_first_event(rest)
        yield _event_chunk(rest, model)


def _event_chunk(event: bytes, model: str) -> RawChunk:
    error = stream_error_event(event) if b'"error"' in event else None
    return RawChunk(renamed(event, model), usage_from_event(event), error)


async def _array_chunks(
    chunks: AsyncIterator[bytes], model: str
) -> AsyncGenerator[RawChunk, None]:
    """One RawChunk per array element, as soon as it is complete, with its usage; only
    elements that mention usageMetadata are parsed. What follows the last element (the
    closing bracket) comes last, as received. Until the first element is whole nothing has
    gone out, so a body that is no array, or whose first element is no object, is refused
    as unreadable and another candidate may answer."""
    pieces = ArrayPieces(model)
    first = True
    async for chunk in chunks:
        found = pieces.feed(chunk)
        if first and not found:
            if pieces.pending.lstrip()[:1] not in (b"", b"["):
                raise unreadable("the stream is not a JSON array")
            continue
        for piece, element in found:
            if first:
                check_first_event(element)
                first = False
            usage = usage_from_response(element) if b"usageMetadata" in element else None
            yield RawChunk(piece, usage, stream_error_event(element))
    if first:
        raise unreadable("the stream ended before its first element")
    rest = pieces.close()
    if rest:
        yield RawChunk(rest, None, stream_error_event(rest))
