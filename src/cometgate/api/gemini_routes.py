"""The Gemini-native REST surface, served identically under /v1beta, /v1 and no version.

Google puts the method after a colon in the last path segment
(`models/gemini-2.5-flash:generateContent`), so one route per version takes the rest of the
path and dispatches on that suffix.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cometgate.api.auth import KeyAuthenticator
from cometgate.api.body import read_body
from cometgate.canonical import GenerateRequest, StreamEvent
from cometgate.dialects.gemini.errors import encode_stream_error
from cometgate.dialects.gemini.inbound import (
    decode_count_tokens_request,
    decode_generate_request,
)
from cometgate.dialects.gemini.models import encode_count_tokens, encode_model, encode_model_list
from cometgate.dialects.gemini.paths import gemini_path
from cometgate.dialects.gemini.response import encode_response
from cometgate.dialects.gemini.stream import GeminiStreamEncoder
from cometgate.errors import GatewayError, InternalError, InvalidRequest, NotFound
from cometgate.pipeline import Call, Dropped, Gateway
from cometgate.providers.base import RawCall, RawChunk

log = logging.getLogger("cometgate.api")

JSON_TYPE = "application/json; charset=UTF-8"
VERSIONS = ("/v1beta", "/v1", "")
DROPPED_HEADER = "x-cometgate-dropped"


@dataclass(frozen=True, slots=True)
class GeminiApi:
    gateway: Gateway
    auth: KeyAuthenticator
    max_body_bytes: int

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in VERSIONS:
            routes.append(Route(f"{prefix}/models", self.list_models, methods=["GET"]))
            routes.append(
                Route(f"{prefix}/models/{{name:path}}", self.model_call, methods=["GET", "POST"])
            )
        return routes

    async def list_models(self, request: Request) -> Response:
        await self.auth.authenticate(request)
        page = encode_model_list(
            self.gateway.models(),
            page_size=_int_query(request, "pageSize"),
            page_token_text=request.query_params.get("pageToken"),
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
            "countTokens": self.count_tokens,
        }.get(method)
        if handler is None:
            raise _no_such_method(request)
        key = await self.auth.authenticate(request)
        self._require_model(request, name, method)
        request.state.translation = key.translation
        return await handler(request, name)

    async def get_model(self, request: Request, name: str) -> Response:
        await self.auth.authenticate(request)
        info = self.gateway.model(name)
        if info is None:
            raise NotFound(f"models/{name.removeprefix('models/')} is not found.")
        return Response(orjson.dumps(encode_model(info)), media_type=JSON_TYPE)

    async def generate_content(self, request: Request, name: str) -> Response:
        body = await read_body(request, self.max_body_bytes)
        call = _call(request, name, body, "generateContent", decode_generate_request)
        outcome = await self.gateway.generate(call)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=outcome.raw.content_type)
        assert outcome.response is not None
        return Response(
            encode_response(outcome.response),
            media_type=JSON_TYPE,
            headers=_dropped_headers(outcome.dropped),
        )

    async def stream_generate_content(self, request: Request, name: str) -> Response:
        alt = request.query_params.get("alt", "json")
        if alt not in ("sse", "json"):
            raise InvalidRequest(f"Invalid value at 'alt' (TYPE_ENUM), \"{alt}\"")
        body = await read_body(request, self.max_body_bytes)
        call = _call(request, name, body, "streamGenerateContent", decode_generate_request,
                     alt="sse" if alt == "sse" else None)
        outcome = await self.gateway.stream(call)
        media_type = "text/event-stream" if alt == "sse" else JSON_TYPE
        if outcome.raw is not None:
            return StreamingResponse(_forwarded(outcome.raw, sse=alt == "sse"),
                                     media_type=media_type)
        assert outcome.events is not None
        encoder = GeminiStreamEncoder("sse" if alt == "sse" else "json")
        return StreamingResponse(
            _encoded(encoder, outcome.events),
            media_type=media_type,
            headers=_dropped_headers(outcome.dropped),
        )

    async def count_tokens(self, request: Request, name: str) -> Response:
        body = await read_body(request, self.max_body_bytes)
        call = _call(request, name, body, "countTokens", decode_count_tokens_request)
        outcome = await self.gateway.count_tokens(call)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=outcome.raw.content_type)
        assert outcome.total is not None
        return Response(encode_count_tokens(outcome.total), media_type=JSON_TYPE)

    def _require_model(self, request: Request, name: str, method: str) -> None:
        if self.gateway.model(name) is None:
            version = request.url.path.split("/")[1] if request.url.path.startswith("/v1") else ""
            raise NotFound(
                f"models/{name.removeprefix('models/')} is not found for API version "
                f"{version or 'v1beta'}, or is not supported for {method}. Call ListModels to "
                "see the list of available models and their supported methods."
            )


async def _encoded(
    encoder: GeminiStreamEncoder, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[bytes]:
    """Stream bytes; once the first byte has gone out, a failure can only be reported in-band,
    as a final error event (integer code, `error` first) that the SDKs raise on."""
    try:
        async for event in events:
            for piece in encoder.feed(event):
                yield piece
        pieces = encoder.end()
    except GatewayError as exc:
        pieces = encoder.fail(exc)
    except Exception:
        log.exception("stream failed after the first byte")
        pieces = encoder.fail(InternalError("Internal error encountered."))
    for piece in pieces:
        yield piece


def _call(
    request: Request,
    name: str,
    body: bytes,
    method: str,
    decode: Callable[[bytes, str], GenerateRequest],
    *,
    alt: str | None = None,
) -> Call:
    """The caller's request as the pipeline sees it: its bytes for a Gemini upstream (under
    the same API version), and a decoder for everyone else."""
    version = request.url.path.split("/")[1]
    # Our unversioned routes mean v1beta; Google's own API has no unversioned paths.
    version = version if version in ("v1", "v1beta") else "v1beta"
    return Call(
        name,
        dialect="gemini",
        decode=lambda: decode(body, name),
        raw=RawCall(body=body, version=version, method=method, alt=alt),
        translation=getattr(request.state, "translation", None),
    )


async def _forwarded(chunks: AsyncIterator[RawChunk], *, sse: bool) -> AsyncIterator[bytes]:
    """A Gemini upstream's stream, event by event as received. If it breaks after the first
    byte, the caller still gets a well-formed ending: an error event (SSE) or an error
    element closing the array."""
    opened = False
    try:
        async for chunk in chunks:
            opened = opened or bool(chunk.data.strip(b"[ \r\n"))
            yield chunk.data
    except GatewayError as exc:
        error = encode_stream_error(exc)
        if sse:
            yield error
        else:
            payload = error.removeprefix(b"data: ").strip()
            yield (b",\r\n" if opened else b"") + payload + b"]"


def _dropped_headers(dropped: Dropped) -> dict[str, str]:
    paths = dropped.caller + tuple(gemini_path(p) for p in dropped.canonical)
    return {DROPPED_HEADER: ",".join(dict.fromkeys(paths))} if paths else {}


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
