"""The request frame: one generate request of any caller dialect, top to bottom. Each layer
adds one concern; the dialect is an `InboundCodec` (dialects/caller_codec), so a route file
is only a path table that binds a codec to `serve`.

    serve            authenticate: the caller's key, the dialect's error envelope
    _read            the model (resolved once) and the body (read and parsed once, by the codec)
    _admitted        admit: access rules, rate limits, the budget reservation
    _answer          route and attempt: pass-through or translation, with failover (pipeline)
    _whole/_streamed settle and record the usage, then render in the caller's dialect

A dialect whose requests need a gateway service of their own (Gemini's stored files and
cached contents, the Responses API's stored conversations and background runs) hands in an
`Extension` with hooks at those layers; the frame itself knows no dialect. A stream's first
byte is marked by the stream bodies themselves (api/streams), not by one more generator
around the upstream's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from starlette.requests import Request
from starlette.responses import Response

from cometgate.api.entrance import Entrance, dropped_header
from cometgate.api.streams import CallerStream, OnEnd, encoded_stream, forwarded_stream
from cometgate.canonical import GenerateResponse
from cometgate.dialects.caller_codec import CallerRequest, Inbound, InboundCodec, StreamEncoder
from cometgate.metering import Ticket
from cometgate.pipeline import Call, PrepareRaw
from cometgate.routing.resolve import ModelRoute
from cometgate.storage.keys import KeyRecord


@dataclass(frozen=True, slots=True)
class Prepared:
    """The request as the attempt layer gets it, and how its bytes are rewritten per attempt
    for a same-dialect upstream (None: forwarded as they are)."""

    inbound: Inbound
    prepare_raw: PrepareRaw | None = None


class Extension:
    """A dialect's own gateway service around the frame (Gemini's stored files, the Responses
    API's stored conversations). Every hook does nothing unless a subclass says otherwise."""

    async def prepare(self, request: Request, key: KeyRecord, inbound: Inbound,
                      route: ModelRoute) -> Prepared:
        """After the request is read, before admission (a refusal here is not recorded)."""
        return Prepared(inbound)

    async def admitted(self, key: KeyRecord, prepared: Prepared, route: ModelRoute
                       ) -> Prepared | None:
        """Once admitted, before the attempts (a refusal here is recorded): the request
        changed by what only an admitted key may use (a gateway cache's prefix), or None."""
        return None

    async def begin(self, request: Request, key: KeyRecord, call: Call, ticket: Ticket,
                    inbound: Inbound) -> Response | None:
        """Once admitted: an answer the frame does not attempt itself (a background run),
        which then settles `ticket` itself; None lets the frame attempt."""
        return None

    async def forwarded(self, inbound: Inbound, body: bytes) -> None:
        """A same-dialect upstream's whole answer, settled and about to be sent."""

    async def rendered(self, inbound: Inbound, response: GenerateResponse) -> bytes | None:
        """A translated whole answer rendered by the extension, or None for the codec's."""
        return None

    def stream_ended(self, inbound: Inbound, encoder: StreamEncoder, on_end: OnEnd) -> OnEnd:
        """What a translated stream calls when it has ended (its record first)."""
        return on_end


NO_EXTENSION = Extension()


@dataclass(frozen=True, slots=True)
class RequestFrame:
    entrance: Entrance

    async def serve(self, request: Request, codec: InboundCodec,
                    extension: Extension = NO_EXTENSION) -> Response:
        request.scope.setdefault("state", {})["dialect"] = codec.error_dialect
        key = await self.entrance.caller(request)
        inbound, route = await self._read(request, codec)
        prepared = await extension.prepare(request, key, inbound, route)
        asked = Asked(codec, prepared.inbound, extension, prepared.prepare_raw)
        return await self._admitted(request, key, asked, _call(asked, key, prepared, route))

    async def _read(self, request: Request, codec: InboundCodec
                    ) -> tuple[Inbound, ModelRoute]:
        """A model the path names is looked up before the body is read (its 404 comes
        first); one the body names, after."""
        path_model, method = codec.path_model(request.path_params)
        # The path as routed (the scope's) rather than `request.url.path`: building the URL
        # object cost more than the rest of this read, and codecs read only the path's
        # leading version segment, the same in both.
        caller = CallerRequest(b"", request.scope["path"], request.query_params,
                               request.headers, path_model, method)
        route = None if caller.path_model is None else self._route(request, codec, caller,
                                                                    caller.path_model)
        caller = replace(caller, body=await self.entrance.body(request))
        inbound = codec.read(caller)
        return inbound, route or self._route(request, codec, caller, inbound.model)

    def _route(self, request: Request, codec: InboundCodec, caller: CallerRequest,
               name: str) -> ModelRoute:
        request.scope["state"]["model"] = name  # an OpenAI-style 404 names it
        route = self.entrance.gateway.route(name)
        if route is None or not codec.serves(route.info.generation_methods, caller):
            raise codec.unknown_model(name, caller)
        return route

    async def _admitted(self, request: Request, key: KeyRecord, asked: Asked,
                        call: Call) -> Response:
        route, inbound = call.route, asked.inbound
        assert route is not None  # set by serve
        ticket = await self.entrance.admit(
            request, key, route.info, estimate=inbound.estimate, dialect=asked.codec.dialect,
            stream=inbound.stream, billable=inbound.billable, translation=route.translation)
        begun = await asked.extension.begin(request, key, call, ticket, inbound)
        if begun is not None:
            return begun
        return await self.entrance.metered(request, ticket,
                                           lambda: self._answer(asked, key, call, ticket))

    async def _answer(self, asked: Asked, key: KeyRecord, call: Call, ticket: Ticket
                      ) -> Response:
        if asked.inbound.refusal is not None:
            raise asked.inbound.refusal
        assert call.route is not None  # set by serve
        again = await asked.extension.admitted(key, Prepared(asked.inbound, asked.prepare_raw),
                                               call.route)
        if again is not None:
            call = _call(asked, key, again, call.route)
        if asked.inbound.stream:
            return await self._streamed(asked, call, ticket)
        return await self._whole(asked, call, ticket)

    async def _whole(self, asked: Asked, call: Call, ticket: Ticket) -> Response:
        entrance, codec, inbound = self.entrance, asked.codec, asked.inbound
        outcome = await entrance.gateway.generate(call)
        dropped = dropped_header(outcome.dropped, codec.caller_path, ticket)  # before the record
        await entrance.finish(ticket, outcome.usage, outcome.served_by)
        headers = await self._headers(codec, ticket, outcome.served_by)
        if outcome.raw is not None:
            await asked.extension.forwarded(inbound, outcome.raw.body)
            return Response(outcome.raw.body, headers=headers,
                            media_type=codec.forwarded_type(outcome.raw.content_type))
        assert outcome.response is not None
        body = (await asked.extension.rendered(inbound, outcome.response)
                or codec.encode_answer(outcome.response, inbound))
        return Response(body, media_type=codec.json_type, headers={**headers, **dropped})

    async def _streamed(self, asked: Asked, call: Call, ticket: Ticket) -> Response:
        entrance, codec, inbound = self.entrance, asked.codec, asked.inbound
        outcome = await entrance.gateway.stream(call)
        headers = await self._headers(codec, ticket, outcome.served_by)
        on_end = entrance.on_end(ticket, outcome.served_by)
        media_type = codec.stream_type(inbound)
        if outcome.raw is not None:
            relayed = forwarded_stream(outcome.raw, framing=codec.framing(inbound),
                                       on_end=on_end, usage=outcome.usage,
                                       arrived=ticket.mark_first_byte)
            return CallerStream(relayed, on_end=on_end, media_type=media_type, headers=headers)
        assert outcome.events is not None
        encoder = codec.stream_encoder(inbound)
        on_end = asked.extension.stream_ended(inbound, encoder, on_end)
        body = encoded_stream(encoder, outcome.events, on_end, outcome.usage,
                              arrived=ticket.mark_first_byte)
        dropped = dropped_header(outcome.dropped, codec.caller_path, ticket)
        return CallerStream(body, on_end=on_end, media_type=media_type,
                            headers={**headers, **dropped})

    async def _headers(self, codec: InboundCodec, ticket: Ticket,
                       served_by: tuple[str, str] | None) -> dict[str, str]:
        if codec.names_upstream_model:
            return await self.entrance.answer_headers(ticket, served_by)
        return await self.entrance.limit_headers(ticket)


@dataclass(frozen=True, slots=True)
class Asked:
    """One request as the layers below admission see it: its dialect, what it asks, and the
    dialect's gateway service."""

    codec: InboundCodec
    inbound: Inbound
    extension: Extension
    prepare_raw: PrepareRaw | None = None


def _call(asked: Asked, key: KeyRecord, prepared: Prepared, route: ModelRoute) -> Call:
    """The request as the pipeline attempts it, on the route resolved as it was read."""
    inbound = prepared.inbound
    return Call(inbound.model, dialect=asked.codec.dialect, decode=inbound.decode,
                raw=inbound.forward, translation=key.translation, words=inbound.words,
                prepare_raw=prepared.prepare_raw, route=route)
