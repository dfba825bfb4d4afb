"""The Responses dialect's surface: `POST /v1/responses` (whole, streamed or in the
background), `POST /v1/responses/input_tokens` and `POST /v1/responses/compact`, also without
`/v1`, with the same keys, limits, budgets and usage records as every dialect. An
OpenAI-compatible upstream that serves the Responses API itself (`responses_api: true`) gets
the caller's request as it is (pass-through); every other model is reached through the
canonical model; background and compaction requests always are. Token counts are always
translated: the count goes to an upstream that counts tokens.

Stored responses live behind `ResponseKeeper` (api/stored_responses): the routes hand it a
`ResponseRecord` for each answer whose request has `store` on (OpenAI's default), once the
answer is final — a whole answer, translated or forwarded, and a translated stream once it has
ended (a forwarded stream is relayed unread, and so is not handed over) — and ask it for the
conversation `previous_response_id` names; a request that continues a stored conversation is
translated, never forwarded. Without a keeper nothing is stored, a `previous_response_id` is
not found and `GET /v1/responses/{id}` answers 404. `seal` seals reasoning state into
`encrypted_content`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.background_responses import BackgroundResponses
from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance, dropped_header
from cometgate.api.frame import Extension, Prepared, RequestFrame
from cometgate.api.stored_responses import previous_not_found, visible, with_history
from cometgate.api.streams import OnEnd
from cometgate.canonical import GenerateRequest, GenerateResponse, ModelInfo
from cometgate.dialects.caller_codec import Inbound, StreamEncoder
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.dialects.responses.caller_codec import FRAME, answer_frame
from cometgate.dialects.responses.caller_params import decode_include
from cometgate.dialects.responses.caller_request import (
    decode_responses_request,
    estimate_responses,
    read_responses_document,
    wants_background,
    wants_store,
)
from cometgate.dialects.responses.caller_response import (
    Frame,
    encode_input_tokens,
    encode_response,
    new_frame,
)
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder
from cometgate.dialects.responses.compaction import (
    compacted_body,
    require_conversation,
    summarising_document,
)
from cometgate.dialects.responses.paths import responses_path
from cometgate.dialects.responses.reasoning_state import INCLUDE
from cometgate.dialects.responses.record import ResponseRecord, response_record
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import InvalidRequest, NotFound
from cometgate.metering import Served, Ticket, served_failure
from cometgate.pipeline import Call
from cometgate.routing.resolve import ModelRoute
from cometgate.storage.keys import KeyRecord

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
DIALECT = "responses"  # as usage records name it


class ResponseKeeper(Protocol):
    """Where stored responses go: `keep` is awaited once per answer with `store` on."""

    async def keep(self, key: KeyRecord, record: ResponseRecord) -> None: ...

    def keeps(self, key: KeyRecord) -> bool: ...

    async def history(self, key: KeyRecord, document: Mapping[str, Any]
                      ) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class ResponsesApi:
    entrance: Entrance
    keeper: ResponseKeeper | None = None
    seal: StateSeal | None = None
    background: BackgroundResponses | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            route
            for prefix in ("/v1", "")
            for route in (
                Route(f"{prefix}/responses", self.create, methods=["POST"]),
                Route(f"{prefix}/responses/input_tokens", self.input_tokens,
                      methods=["POST"]),
                Route(f"{prefix}/responses/compact", self.compact, methods=["POST"]),
                Route(f"{prefix}/responses/{{response_id}}", self.retrieve,
                      methods=["GET", "DELETE"]),
            )
        ]

    async def create(self, request: Request) -> Response:
        return await RequestFrame(self.entrance).serve(request, CALLER_CODECS[DIALECT],
                                                StoredConversations(self))

    async def input_tokens(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        entrance = self.entrance
        key = await entrance.caller(request)
        document = read_responses_document(await entrance.body(request))
        name: str = document["model"]
        entrance.check_access(request, key, self._model(request, name))
        whole = await self._with_history(key, document)
        call = Call(name, dialect=DIALECT,
                    decode=lambda: decode_responses_request(whole, self.seal),
                    translation=key.translation)
        outcome = await entrance.gateway.count_tokens(call)
        assert outcome.total is not None  # nothing forwards a Responses caller's bytes yet
        return Response(encode_input_tokens(outcome.total), media_type=JSON_TYPE)

    async def compact(self, request: Request) -> Response:
        """The conversation summarised by the model (one metered generation) and sealed
        into a `compaction` item (dialects/responses/compaction)."""
        settle_dialect(request, "openai")
        entrance = self.entrance
        key = await entrance.caller(request)
        document = read_responses_document(await entrance.body(request), require_input=False)
        require_conversation(document)
        name: str = document["model"]
        info = self._model(request, name)
        seal = self.seal
        if seal is None:
            raise InvalidRequest("Compaction is not available: this gateway keeps no secret "
                                 "to seal the summary with.")
        whole = await self._with_history(key, document)
        asking = summarising_document(whole)
        ticket = await entrance.admit(request, key, info, estimate=estimate_responses(asking),
                                      dialect=DIALECT, stream=False)
        call = Call(name, dialect=DIALECT,
                    decode=lambda: decode_responses_request(asking, seal),
                    translation=key.translation)

        async def compacted() -> Response:
            outcome = await entrance.gateway.generate(call)
            dropped = dropped_header(outcome.dropped, responses_path, ticket)
            await entrance.finish(ticket, outcome.usage, outcome.served_by)
            headers = await entrance.limit_headers(ticket)
            assert outcome.response is not None  # nothing forwards without a RawCall
            body = compacted_body(whole, outcome.response, seal, int(time.time()))
            return Response(orjson.dumps(body), media_type=JSON_TYPE, headers={
                **headers, **dropped})

        return await entrance.metered(request, ticket, compacted)

    async def retrieve(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        await self.entrance.caller(request)
        response_id = request.path_params["response_id"]
        raise NotFound(f"Response with id '{response_id}' not found.")

    async def _begin(self, background: BackgroundResponses, request: Request, key: KeyRecord,
                     call: Call, ticket: Ticket, frame: Frame, document: Mapping[str, Any],
                     ) -> Response:
        """Answer a background request at once, queued; its generation is metered on
        `ticket` when its task ends. A request that cannot be decoded, or that no upstream
        of the model could carry, is refused now."""
        try:
            self.entrance.gateway.check_translatable(call)
            queued = await background.begin(key, document, call, ticket, frame)
        except BaseException as exc:
            await self.entrance.meter.finish(ticket, served_failure(exc))
            raise
        headers = await self.entrance.limit_headers(ticket)
        return Response(orjson.dumps(visible(queued, frame.include)), media_type=JSON_TYPE,
                        headers=headers)

    async def _with_history(self, key: KeyRecord, document: Mapping[str, Any]
                            ) -> Mapping[str, Any]:
        """The request with the stored conversation it continues before its own input."""
        previous = document.get("previous_response_id")
        if previous is None:
            return document
        if self.keeper is None:
            raise previous_not_found(previous)
        return with_history(document, await self.keeper.history(key, document))

    async def _continued(self, key: KeyRecord, document: Mapping[str, Any]
                         ) -> tuple[Mapping[str, Any], InvalidRequest | None]:
        """`_with_history`, except that an id the gateway did not store is left for an
        upstream that serves the Responses API itself (pass-through) to know; translated, the
        request is refused as not found."""
        try:
            return await self._with_history(key, document), None
        except InvalidRequest as exc:
            if exc.code != "previous_response_not_found":
                raise
            return document, exc

    def _keeping(self, key: KeyRecord, document: Mapping[str, Any]) -> _Keep:
        return _Keep(self.keeper if wants_store(document) else None, key, document)

    def _model(self, request: Request, name: str) -> ModelInfo:
        request.scope["state"]["model"] = name  # a 404 names it, as OpenAI's does
        info = self.entrance.model(name)
        if info is None:
            raise NotFound(f"The model `{name}` does not exist.")
        return info


@dataclass(frozen=True, slots=True)
class StoredConversations(Extension):
    """The gateway's Responses service around the frame: the stored conversation a request
    continues (which makes it translated, never forwarded), background runs, and each final
    Response handed to the keeper when the request has `store` on."""

    api: ResponsesApi

    async def prepare(self, request: Request, key: KeyRecord, inbound: Inbound,
                      route: ModelRoute) -> Prepared:
        api, document = self.api, _document(inbound)
        kept = api.keeper is not None and wants_store(document) and api.keeper.keeps(key)
        frame = new_frame(document, decode_include(document), seal=api.seal, kept=kept)
        if wants_store(document) and not kept:  # the answer says it was not stored
            frame = replace(frame, settings={**frame.settings, "store": False})
        background = wants_background(document)
        if background and (api.background is None or not api.background.runs(key)):
            raise _not_stored_here()
        whole, unknown = await api._continued(key, document)
        seal = api.seal

        def decode() -> GenerateRequest:
            if unknown is not None:
                raise unknown
            return decode_responses_request(whole, seal)

        # The gateway's stored conversation is only in the translated request; a background
        # response is generated by the gateway itself, so it is translated too.
        forward = inbound.forward if whole is document and not background else None
        options = {**inbound.options, FRAME: frame, _KEEP: api._keeping(key, document),
                   _BACKGROUND: background}
        return Prepared(replace(inbound, estimate=estimate_responses(whole), decode=decode,
                                forward=forward, options=options))

    async def begin(self, request: Request, key: KeyRecord, call: Call, ticket: Ticket,
                    inbound: Inbound) -> Response | None:
        if self.api.background is None or not inbound.options[_BACKGROUND]:
            return None
        return await self.api._begin(self.api.background, request, key, call, ticket,
                                     answer_frame(inbound), _document(inbound))

    async def forwarded(self, inbound: Inbound, body: bytes) -> None:
        keep = _keep(inbound)
        forwarded = orjson.loads(body) if keep.wanted else None
        if isinstance(forwarded, dict):
            await keep(forwarded)

    async def rendered(self, inbound: Inbound, response: GenerateResponse) -> bytes | None:
        frame = answer_frame(inbound)
        body = encode_response(response, frame)
        await _keep(inbound)(body)
        if INCLUDE not in frame.include:  # sealed only to be stored
            body = visible(body, frame.include)
        return orjson.dumps(body)

    def stream_ended(self, inbound: Inbound, encoder: StreamEncoder, on_end: OnEnd) -> OnEnd:
        assert isinstance(encoder, ResponseStreamEncoder)
        return _then_keep(on_end, encoder, _keep(inbound))


_KEEP, _BACKGROUND = "keep", "background"  # options the service adds to the request


def _document(inbound: Inbound) -> Mapping[str, Any]:
    document: Mapping[str, Any] = inbound.options["document"]  # type: ignore[assignment]
    return document


def _keep(inbound: Inbound) -> _Keep:
    keep = inbound.options[_KEEP]
    assert isinstance(keep, _Keep)
    return keep


def _not_stored_here() -> InvalidRequest:
    message = ("Background mode requires a stored response, and this gateway stores no "
               "responses for this key.")
    return InvalidRequest(message, violations={"background": message})


@dataclass(frozen=True, slots=True)
class _Keep:
    """Hands one request's final Response to the keeper, when there is one and the request
    has `store` on."""

    keeper: ResponseKeeper | None
    key: KeyRecord
    document: Mapping[str, Any]

    @property
    def wanted(self) -> bool:
        return self.keeper is not None

    async def __call__(self, body: Mapping[str, Any]) -> None:
        if self.keeper is not None:
            await self.keeper.keep(self.key, response_record(self.document, body))


def _then_keep(on_end: OnEnd, encoder: ResponseStreamEncoder, keep: _Keep) -> OnEnd:
    """The stream's record first, then the final Response to the store, once: a CallerStream
    calls its `on_end` again when it closes. A stream the caller left has no final Response,
    and nothing is kept of it."""
    kept = False

    async def ended(served: Served) -> None:
        nonlocal kept
        await on_end(served)
        final = encoder.final
        if final is not None and not kept:
            kept = True
            await keep(final)

    return ended
