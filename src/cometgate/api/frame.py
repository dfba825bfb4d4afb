"""The request frame: one generate request of any caller dialect, top to bottom. Each layer
adds one concern; the dialect is an `InboundCodec` (dialects/inbound_codec), so a route file
is only a path table that binds a codec to `serve`.

    serve            authenticate: the caller's key, the dialect's error envelope
    _read            the model (resolved once) and the body (read and parsed once, by the codec)
    _admitted        admit: access rules, rate limits, the budget reservation
    _answer          route and attempt: pass-through or translation, with failover (pipeline)
    _whole/_streamed settle and record the usage, then render in the caller's dialect

A dialect that needs a gateway service before admission (Gemini's stored files) hands in an
`Extension`; the frame itself knows no dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from cometgate.api.entrance import Entrance, dropped_header
from cometgate.api.streams import CallerStream, encoded_stream, forwarded_stream
from cometgate.canonical import GenerateRequest
from cometgate.dialects.inbound_codec import CallerRequest, Inbound, InboundCodec
from cometgate.metering import Ticket
from cometgate.pipeline import Call, PrepareRaw
from cometgate.routing.resolve import ModelRoute
from cometgate.storage.keys import KeyRecord


@dataclass(frozen=True, slots=True)
class Prepared:
    """How the attempt layer gets the caller's request: decoded (for a translation) and as
    bytes (for a same-dialect upstream, rewritten per attempt when `prepare_raw` is set)."""

    decode: Callable[[], GenerateRequest]
    prepare_raw: PrepareRaw | None = None


class Extension(Protocol):
    """A dialect's own gateway service, run after the request is read and before admission
    (a refusal here is not recorded)."""

    async def prepare(self, request: Request, key: KeyRecord, inbound: Inbound,
                      route: ModelRoute) -> Prepared: ...


@dataclass(frozen=True, slots=True)
class Frame:
    entrance: Entrance

    async def serve(self, request: Request, codec: InboundCodec,
                    extension: Extension | None = None) -> Response:
        request.scope.setdefault("state", {})["dialect"] = codec.error_dialect
        key = await self.entrance.caller(request)
        inbound, route = await self._read(request, codec)
        prepared = (Prepared(inbound.decode) if extension is None
                    else await extension.prepare(request, key, inbound, route))
        call = Call(inbound.model, dialect=codec.dialect, decode=prepared.decode,
                    raw=inbound.forward, translation=key.translation, words=inbound.words,
                    prepare_raw=prepared.prepare_raw, route=route)
        return await self._admitted(request, key, codec, inbound, call)

    async def _read(self, request: Request, codec: InboundCodec
                    ) -> tuple[Inbound, ModelRoute]:
        """A model the path names is looked up before the body is read (its 404 comes
        first); one the body names, after."""
        path_model, method = codec.path_model(request.path_params)
        caller = CallerRequest(b"", request.url.path, request.query_params, request.headers,
                               path_model, method)
        route = None if caller.path_model is None else self._route(request, codec, caller,
                                                                    caller.path_model)
        caller = CallerRequest(await self.entrance.body(request), caller.path, caller.query,
                               caller.headers, caller.path_model, caller.method)
        inbound = codec.read(caller)
        return inbound, route or self._route(request, codec, caller, inbound.model)

    def _route(self, request: Request, codec: InboundCodec, caller: CallerRequest,
               name: str) -> ModelRoute:
        request.scope["state"]["model"] = name  # an OpenAI-style 404 names it
        route = self.entrance.gateway.route(name)
        if route is None or not codec.serves(route.info.generation_methods, caller):
            raise codec.unknown_model(name, caller)
        return route

    async def _admitted(self, request: Request, key: KeyRecord, codec: InboundCodec,
                        inbound: Inbound, call: Call) -> Response:
        route = call.route
        assert route is not None  # set by serve
        ticket = await self.entrance.admit(
            request, key, route.info, estimate=inbound.estimate, dialect=codec.dialect,
            stream=inbound.stream, billable=inbound.billable, translation=route.translation)
        return await self.entrance.metered(
            request, ticket, lambda: self._answer(codec, inbound, call, ticket))

    async def _answer(self, codec: InboundCodec, inbound: Inbound, call: Call,
                      ticket: Ticket) -> Response:
        if inbound.refusal is not None:
            raise inbound.refusal
        if inbound.stream:
            return await self._streamed(codec, inbound, call, ticket)
        return await self._whole(codec, inbound, call, ticket)

    async def _whole(self, codec: InboundCodec, inbound: Inbound, call: Call,
                     ticket: Ticket) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.generate(call)
        dropped = dropped_header(outcome.dropped, codec.caller_path, ticket)  # before the record
        await entrance.finish(ticket, outcome.usage, outcome.served_by)
        headers = await self._headers(codec, ticket, outcome.served_by)
        if outcome.raw is not None:
            return Response(outcome.raw.body, headers=headers,
                            media_type=codec.forwarded_type(outcome.raw.content_type))
        assert outcome.response is not None
        return Response(codec.encode_answer(outcome.response, inbound),
                        media_type=codec.json_type, headers={**headers, **dropped})

    async def _streamed(self, codec: InboundCodec, inbound: Inbound, call: Call,
                        ticket: Ticket) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.stream(call)
        headers = await self._headers(codec, ticket, outcome.served_by)
        on_end = entrance.on_end(ticket, outcome.served_by)
        media_type = codec.stream_type(inbound)
        if outcome.raw is not None:
            relayed = forwarded_stream(outcome.raw, framing=codec.framing(inbound),
                                       on_end=on_end, arrived=ticket.mark_first_byte)
            return CallerStream(relayed, on_end=on_end, media_type=media_type, headers=headers)
        assert outcome.events is not None
        body = encoded_stream(codec.stream_encoder(inbound), outcome.events, on_end,
                              arrived=ticket.mark_first_byte)
        dropped = dropped_header(outcome.dropped, codec.caller_path, ticket)
        return CallerStream(body, on_end=on_end, media_type=media_type,
                            headers={**headers, **dropped})

    async def _headers(self, codec: InboundCodec, ticket: Ticket,
                       served_by: tuple[str, str] | None) -> dict[str, str]:
        if codec.names_upstream_model:
            return await self.entrance.answer_headers(ticket, served_by)
        return await self.entrance.limit_headers(ticket)
