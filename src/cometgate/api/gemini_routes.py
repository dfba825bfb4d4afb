"""The Gemini-native REST surface, served identically under /v1beta, /v1 and no version.

Google puts the method after a colon in the last path segment
(`models/gemini-2.5-flash:generateContent`), so one route per version takes the rest of the
path and dispatches on that suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.cached_prefix import AppliedCache, CachedPrefixes
from cometgate.api.entrance import Entrance, dropped_header, first_byte
from cometgate.api.file_references import BoundFiles, FileLinker
from cometgate.api.middleware import MODEL_RESOURCE
from cometgate.api.streams import CallerStream, encoded_stream, forwarded_stream
from cometgate.canonical import GenerateRequest, ModelInfo, Usage
from cometgate.dialects.gemini.embed import (
    decode_batch_embed_contents,
    decode_embed_content,
    encode_batch_embed_contents,
    encode_embed_content,
)
from cometgate.dialects.gemini.estimate import admission
from cometgate.dialects.gemini.inbound import (
    decode_count_tokens_request,
    decode_generate_request,
)
from cometgate.dialects.gemini.models import (
    encode_count_tokens,
    encode_model,
    encode_model_list,
    prompt_is_text,
)
from cometgate.dialects.gemini.paths import gemini_path
from cometgate.dialects.gemini.response import encode_response
from cometgate.dialects.gemini.stream import ForwardedGeminiFraming, GeminiStreamEncoder
from cometgate.drawing import image_output_mode
from cometgate.errors import InvalidRequest, NotFound
from cometgate.metering import Ticket
from cometgate.pipeline import Call
from cometgate.providers.base import RawCall
from cometgate.storage.keys import KeyRecord

log = logging.getLogger("cometgate.api")

JSON_TYPE = "application/json; charset=UTF-8"
VERSIONS = ("/v1beta", "/v1", "")


@dataclass(frozen=True, slots=True)
class GeminiApi:
    entrance: Entrance
    files: FileLinker | None = None  # gateway files in fileData (file_references)
    caches: CachedPrefixes | None = None  # None: cachedContent is not served (no storage)

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in VERSIONS:
            routes.append(Route(f"{prefix}/models", self.list_models, methods=["GET"],
                                name="models.list"))
            routes.append(
                Route(f"{prefix}/models/{{name:path}}", self.model_call, methods=["GET", "POST"],
                      name=MODEL_RESOURCE)
            )
        return routes

    async def list_models(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        page = encode_model_list(
            self.entrance.models_for(key),
            page_size=_int_query(request, "pageSize"),
            page_token_text=request.query_params.get("pageToken"),
            tools_of=self.entrance.gateway.model_tools,
        )
        return Response(orjson.dumps(page), media_type=JSON_TYPE)

    async def model_call(self, request: Request) -> Response:
        name, _, method = request.path_params["name"].rpartition(":")
        if not name:
            name, method = method, ""
        if request.method == "GET":
            if method:
                raise _no_such_method(request)
            return await self.get_model(request, name)
        handler = {
            "generateContent": self.generate_content,
            "streamGenerateContent": self.stream_generate_content,
            "embedContent": self.embed_content,
            "batchEmbedContents": self.embed_content,
        }.get(method)
        if handler is None and method != "countTokens":
            raise _no_such_method(request)
        entrance = self.entrance
        key = await entrance.caller(request)
        info = self._require_model(request, name, method)
        body = await entrance.body(request)
        if self.files is not None and method != "embedContent":
            # Before admission: a file the key may not read is refused, and not recorded.
            request.state.files = await self.files.bind(
                key.id, body, str(request.base_url),
                inline=lambda: entrance.gateway.translates_for(name, "gemini"))
        if handler is None:  # countTokens: access rules apply; it is not metered
            entrance.check_access(request, key, info)
            return await self.count_tokens(request, key, name, body)
        estimate, billable = admission(body)
        if self.caches is not None:  # a cached prefix is prompt too: reserved for up front
            estimate = (estimate[0] + await self.caches.size(key, body), estimate[1])
        if image_output_mode(info) is not None and not billable.images:
            # An image model draws whatever modalities were asked for: one per candidate.
            billable = replace(billable, images=billable.candidates)
        if any(field.name == "codeExecution" for field in billable.fields):
            # The sandbox's seconds are the gateway's own work: reserved at their most.
            billable = replace(billable,
                               sandbox_seconds=entrance.gateway.sandbox_reserve(info.id))
        ticket = await entrance.admit(
            request, key, info, estimate=estimate, dialect="gemini",
            stream=method == "streamGenerateContent", billable=billable,
        )
        return await entrance.metered(
            request, ticket, lambda: handler(request, key, name, body, ticket))

    async def get_model(self, request: Request, name: str) -> Response:
        key = await self.entrance.caller(request)
        info = self.entrance.model_for(key, name)
        if info is None:
            raise NotFound(f"models/{name.removeprefix('models/')} is not found.")
        tools = self.entrance.gateway.model_tools(info.id)
        return Response(orjson.dumps(encode_model(info, tools)), media_type=JSON_TYPE)

    async def generate_content(
        self, request: Request, key: KeyRecord, name: str, body: bytes, ticket: Ticket
    ) -> Response:
        cache = await self._cached_prefix(key, name, body, "generateContent")
        call = _call(request, key, name, body, "generateContent", decode_generate_request,
                     cache=cache)
        outcome = await self.entrance.gateway.generate(call)
        dropped = dropped_header(outcome.dropped, gemini_path, ticket)  # before the record
        await self.entrance.finish(ticket, outcome.usage, outcome.served_by)
        headers = await self.entrance.answer_headers(ticket, outcome.served_by)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=outcome.raw.content_type,
                            headers=headers)
        assert outcome.response is not None
        return Response(
            encode_response(outcome.response),
            media_type=JSON_TYPE,
            headers={**headers, **dropped},
        )

    async def stream_generate_content(
        self, request: Request, key: KeyRecord, name: str, body: bytes, ticket: Ticket
    ) -> Response:
        alt = request.query_params.get("alt", "json")
        if alt not in ("sse", "json"):
            raise InvalidRequest(f"Invalid value at 'alt' (TYPE_ENUM), \"{alt}\"")
        cache = await self._cached_prefix(key, name, body, "streamGenerateContent")
        call = _call(request, key, name, body, "streamGenerateContent", decode_generate_request,
                     alt="sse" if alt == "sse" else None, cache=cache)
        entrance = self.entrance
        outcome = await entrance.gateway.stream(call)
        media_type = "text/event-stream" if alt == "sse" else JSON_TYPE
        headers = await entrance.answer_headers(ticket, outcome.served_by)
        on_end = entrance.on_end(ticket, outcome.served_by)
        if outcome.raw is not None:
            framing = ForwardedGeminiFraming(sse=alt == "sse")
            return CallerStream(
                forwarded_stream(first_byte(ticket, outcome.raw), framing=framing,
                                 on_end=on_end, usage=outcome.usage),
                on_end=on_end, media_type=media_type, headers=headers,
            )
        assert outcome.events is not None
        encoder = GeminiStreamEncoder("sse" if alt == "sse" else "json")
        return CallerStream(
            encoded_stream(encoder, first_byte(ticket, outcome.events), on_end, outcome.usage),
            on_end=on_end, media_type=media_type,
            headers={**headers, **dropped_header(outcome.dropped, gemini_path, ticket)},
        )

    async def embed_content(
        self, request: Request, key: KeyRecord, name: str, body: bytes, ticket: Ticket
    ) -> Response:
        """`:embedContent` (one input) and `:batchEmbedContents` (many), same path inside."""
        batch = request.path_params["name"].endswith(":batchEmbedContents")
        decode = decode_batch_embed_contents if batch else decode_embed_content
        outcome = await self.entrance.gateway.embed(decode(body, name))
        usage = Usage(prompt_tokens=outcome.response.prompt_tokens)
        await self.entrance.finish(ticket, usage, outcome.served_by)
        encode = encode_batch_embed_contents if batch else encode_embed_content
        return Response(encode(outcome.response), media_type=JSON_TYPE,
                        headers=await self.entrance.limit_headers(ticket))

    async def count_tokens(
        self, request: Request, key: KeyRecord, name: str, body: bytes
    ) -> Response:
        cache = await self._cached_prefix(key, name, body, "countTokens")
        call = _call(request, key, name, body, "countTokens", decode_count_tokens_request,
                     cache=cache)
        outcome = await self.entrance.gateway.count_tokens(call)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=outcome.raw.content_type)
        assert outcome.total is not None
        text_only = prompt_is_text(call.request())  # decoded already: it was translated
        return Response(encode_count_tokens(outcome.total, text_only=text_only),
                        media_type=JSON_TYPE)

    async def _cached_prefix(self, key: KeyRecord, name: str, body: bytes, method: str
                             ) -> AppliedCache | None:
        """The body with the cache it names applied (after admission: a key that may not
        send `cachedContent` hears that first)."""
        info = self.entrance.model(name)
        if self.caches is None or info is None:
            return None
        return await self.caches.apply(key, info.id, body, method)

    def _require_model(self, request: Request, name: str, method: str) -> ModelInfo:
        info = self.entrance.model(name)
        # A stream is a generateContent; an embedding model lists only its embedding methods.
        family = "generateContent" if method == "streamGenerateContent" else method
        if info is None or family not in info.generation_methods:
            version = request.url.path.split("/")[1] if request.url.path.startswith("/v1") else ""
            raise NotFound(
                f"models/{name.removeprefix('models/')} is not found for API version "
                f"{version or 'v1beta'}, or is not supported for {method}. Call ListModels to "
                "see the list of available models and their supported methods."
            )
        return info


def _call(
    request: Request,
    key: KeyRecord,
    name: str,
    body: bytes,
    method: str,
    decode: Callable[[bytes, str], GenerateRequest],
    *,
    alt: str | None = None,
    cache: AppliedCache | None = None,
) -> Call:
    """The caller's request as the pipeline sees it: its bytes for a Gemini upstream (under
    the same API version), and a decoder for everyone else; with the cache it names applied."""
    if cache is not None:
        body = cache.body
        plain = decode
        prompt_cache = cache.prompt_cache

        def decode(body: bytes, name: str) -> GenerateRequest:
            return replace(plain(body, name), prompt_cache=prompt_cache)

    version = request.url.path.split("/")[1]
    # Our unversioned routes mean v1beta; Google's own API has no unversioned paths.
    version = version if version in ("v1", "v1beta") else "v1beta"
    files: BoundFiles | None = getattr(request.state, "files", None)
    upstream_cache = cache.upstream if cache is not None else None
    if files is None:
        return Call(name, dialect="gemini", decode=lambda: decode(body, name),
                    raw=RawCall(body=body, version=version, method=method, alt=alt,
                                cache=upstream_cache),
                    translation=key.translation)
    return Call(
        name,
        dialect="gemini",
        decode=lambda: files.inline(decode(body, name)),
        raw=RawCall(body=body, version=version, method=method, alt=alt, cache=upstream_cache),
        translation=key.translation,
        prepare_raw=files.prepare_raw,
    )


def _int_query(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"Invalid value at '{name}' (TYPE_INT32), \"{value}\"") from None


def _no_such_method(request: Request) -> NotFound:
    return NotFound(f"Method not found: {request.method} {request.url.path}")
