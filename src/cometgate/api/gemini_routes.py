"""The Gemini-native REST surface, served identically under /v1beta, /v1 and no version.

Google puts the method after a colon in the last path segment
(`models/gemini-2.5-flash:generateContent`), so one route per version takes the rest of the
path and dispatches on that suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.cached_prefix import AppliedCache, CachedPrefixes
from cometgate.api.entrance import Entrance
from cometgate.api.file_references import BoundFiles, FileLinker
from cometgate.api.frame import Extension, Prepared, RequestFrame
from cometgate.api.middleware import MODEL_RESOURCE
from cometgate.canonical import GenerateRequest, ModelInfo, Usage
from cometgate.dialects.billable import Billable
from cometgate.dialects.caller_codec import CallerRequest, Inbound
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.dialects.gemini.caller_request import (
    decode_count_tokens_request,
    decode_generate_request,
)
from cometgate.dialects.gemini.embed import (
    decode_batch_embed_contents,
    decode_embed_content,
    encode_batch_embed_contents,
    encode_embed_content,
)
from cometgate.dialects.gemini.estimate import admission
from cometgate.dialects.gemini.models import (
    encode_count_tokens,
    encode_model,
    encode_model_list,
    prompt_is_text,
)
from cometgate.drawing import image_output_mode
from cometgate.errors import InvalidRequest, NotFound
from cometgate.metering import Ticket
from cometgate.pipeline import Call, Gateway
from cometgate.providers.base import RawCall
from cometgate.routing.resolve import ModelRoute
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
        name, method = GEMINI.path_model(request.path_params)
        if request.method == "GET":
            if method:
                raise _no_such_method(request)
            return await self.get_model(request, name or "")
        if method in ("generateContent", "streamGenerateContent"):
            return await RequestFrame(self.entrance).serve(request, GEMINI, self._services())
        handler = {
            "embedContent": self.embed_content,
            "batchEmbedContents": self.embed_content,
        }.get(method)
        if handler is None and method != "countTokens":
            raise _no_such_method(request)
        return await self._special(request, name or "", method, handler)

    async def _special(self, request: Request, name: str, method: str,
                       handler: Special | None) -> Response:
        """countTokens and the embeddings, which are not the generate frame."""
        entrance = self.entrance
        key = await entrance.caller(request)
        info = self._require_model(request, name, method)
        body = await entrance.body(request)
        if self.files is not None and method != "embedContent":
            # Before admission: a file the key may not read is refused, and not recorded.
            request.state.files = await self.files.bind(
                key.id, body, lambda: str(request.base_url),
                inline=lambda: entrance.gateway.translates_for(name, "gemini"))
        if handler is None:  # countTokens: access rules apply; it is not metered
            entrance.check_access(request, key, info)
            return await self.count_tokens(request, key, name, body)
        estimate, billable = admission(body)
        if self.caches is not None:  # a cached prefix is prompt too: reserved for up front
            estimate = (estimate[0] + await self.caches.size(key, body), estimate[1])
        billable = gateway_work(billable, info, entrance.gateway)
        ticket = await entrance.admit(
            request, key, info, estimate=estimate, dialect="gemini", stream=False,
            billable=billable,
        )
        return await entrance.metered(
            request, ticket, lambda: handler(request, key, name, body, ticket))

    def _services(self) -> Extension:
        return GeminiServices(self.files, self.caches, self.entrance.gateway)

    async def get_model(self, request: Request, name: str) -> Response:
        key = await self.entrance.caller(request)
        info = self.entrance.model_for(key, name)
        if info is None:
            raise NotFound(f"models/{name.removeprefix('models/')} is not found.")
        tools = self.entrance.gateway.model_tools(info.id)
        return Response(orjson.dumps(encode_model(info, tools)), media_type=JSON_TYPE)

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
        call = _count_call(request, key, name, body, cache)
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
        caller = CallerRequest(b"", request.url.path, request.query_params, request.headers,
                               name, method)
        if info is None or not GEMINI.serves(info.generation_methods, caller):
            raise GEMINI.unknown_model(name, caller)
        return info


@dataclass(frozen=True, slots=True)
class GeminiServices(Extension):
    """The gateway's own services a Gemini generate request may name. Gateway files in its
    fileData: checked against the key before admission, inlined for a translation, copied to
    the upstream for a pass-through. A gateway cache in its cachedContent: its size reserved
    at admission, its prefix applied once admitted (a key that may not send `cachedContent`
    hears that first) — see api/cached_prefix."""

    files: FileLinker | None
    caches: CachedPrefixes | None
    gateway: Gateway

    async def prepare(self, request: Request, key: KeyRecord, inbound: Inbound,
                      route: ModelRoute) -> Prepared:
        assert inbound.forward is not None  # a Gemini caller's bytes are always kept
        body = inbound.forward.body
        if self.caches is not None:  # a cached prefix is prompt too: reserved for up front
            prompt, output = inbound.estimate
            inbound = replace(inbound, estimate=(prompt + await self.caches.size(key, body),
                                                 output))
        inbound = replace(inbound, billable=gateway_work(inbound.billable, route.info,
                                                         self.gateway))
        bound = None if self.files is None else await self.files.bind(
            key.id, body, lambda: str(request.base_url),
            inline=lambda: self.gateway.translates(route, "gemini"))
        if bound is None:
            return Prepared(inbound)
        decode = inbound.decode
        return Prepared(replace(inbound, decode=lambda: bound.inline(decode()),
                                options={**inbound.options, _FILES: bound}),
                        bound.prepare_raw)

    async def admitted(self, key: KeyRecord, prepared: Prepared, route: ModelRoute
                       ) -> Prepared | None:
        inbound, forward = prepared.inbound, prepared.inbound.forward
        assert forward is not None
        if self.caches is None:
            return None
        cache = await self.caches.apply(key, route.info.id, forward.body, forward.method)
        if cache is None:
            return None
        name, prompt_cache = inbound.model, cache.prompt_cache
        bound = inbound.options.get(_FILES)

        def decode() -> GenerateRequest:
            request = replace(decode_generate_request(cache.body, name),
                              prompt_cache=prompt_cache)
            return bound.inline(request) if isinstance(bound, BoundFiles) else request

        applied = replace(forward, body=cache.body, cache=cache.upstream)
        return replace(prepared, inbound=replace(inbound, decode=decode, forward=applied))


_FILES = "files"  # options key: the gateway files a request names, bound before admission


def gateway_work(billable: Billable, info: ModelInfo, gateway: Gateway) -> Billable:
    """What a request asks of the gateway's own work, reserved at admission: an image model
    draws whatever modalities were asked for (one image per candidate), and code execution
    runs in the sandbox for at most its reserved seconds."""
    if image_output_mode(info) is not None and not billable.images:
        billable = replace(billable, images=billable.candidates)
    if any(field.name == "codeExecution" for field in billable.fields):
        billable = replace(billable, sandbox_seconds=gateway.sandbox_reserve(info.id))
    return billable


Special = Callable[[Request, KeyRecord, str, bytes, Ticket], Awaitable[Response]]
GEMINI = CALLER_CODECS["gemini"]


def _count_call(request: Request, key: KeyRecord, name: str, body: bytes,
                cache: AppliedCache | None) -> Call:
    """A countTokens request as the pipeline sees it: its bytes for a Gemini upstream (under
    the same API version), and a decoder for everyone else; with the cache it names applied."""
    def decode(body: bytes, name: str) -> GenerateRequest:
        request = decode_count_tokens_request(body, name)
        return request if cache is None else replace(request, prompt_cache=cache.prompt_cache)

    if cache is not None:
        body = cache.body
    version = request.url.path.split("/")[1]
    # Our unversioned routes mean v1beta; Google's own API has no unversioned paths.
    version = version if version in ("v1", "v1beta") else "v1beta"
    raw = RawCall(body=body, version=version, method="countTokens",
                  cache=cache.upstream if cache is not None else None)
    files: BoundFiles | None = getattr(request.state, "files", None)
    if files is None:
        return Call(name, dialect="gemini", decode=lambda: decode(body, name),
                    raw=raw, translation=key.translation)
    return Call(name, dialect="gemini", decode=lambda: files.inline(decode(body, name)),
                raw=raw, translation=key.translation, prepare_raw=files.prepare_raw)


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
