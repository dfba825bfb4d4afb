"""The Anthropic dialect's surface: `POST /v1/messages`, `POST /v1/messages/count_tokens`
and the Anthropic side of `GET /v1/models`. A model whose upstream speaks Anthropic gets the
caller's request as it is (pass-through); any other is reached through the canonical model.
The key may come in `x-api-key`, as Anthropic's clients send it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance, dropped_header, first_byte
from cometgate.api.streams import CallerStream, encoded_stream, forwarded_stream
from cometgate.canonical import ModelInfo
from cometgate.dialects.anthropic.count_tokens import caller_headers, caller_query
from cometgate.dialects.anthropic.inbound import (
    BETA_HEADER,
    decode_messages_request,
    estimate_messages,
    read_messages_document,
    wants_stream,
)
from cometgate.dialects.anthropic.inbound_response import encode_count_tokens, encode_message
from cometgate.dialects.anthropic.inbound_stream import MessageStreamEncoder
from cometgate.dialects.anthropic.models import encode_model, encode_model_list
from cometgate.dialects.anthropic.passthrough import ForwardedAnthropicFraming
from cometgate.dialects.anthropic.paths import anthropic_path
from cometgate.dialects.anthropic.refusals import anthropic_refusal
from cometgate.errors import NotFound
from cometgate.metering import Ticket
from cometgate.pipeline import Call
from cometgate.providers.base import RawCall

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class AnthropicApi:
    entrance: Entrance

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"], name="messages"),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"],
                  name="messages.count_tokens"),
        ]

    async def list_models(self, request: Request) -> Response:
        settle_dialect(request, "anthropic")
        key = await self.entrance.caller(request)
        return Response(encode_model_list(self.entrance.models_for(key)),
                        media_type=JSON_TYPE)

    async def get_model(self, request: Request, name: str) -> Response:
        settle_dialect(request, "anthropic")
        key = await self.entrance.caller(request)
        info = self.entrance.model_for(key, name)
        if info is None:
            raise NotFound(f"model: {name}")  # Anthropic's own wording for an unknown model
        return Response(encode_model(info), media_type=JSON_TYPE)

    async def messages(self, request: Request) -> Response:
        settle_dialect(request, "anthropic")
        entrance = self.entrance
        key = await entrance.caller(request)
        body = await entrance.body(request)
        document = read_messages_document(body)
        name: str = document["model"]
        info = self._model(name)
        stream = wants_stream(document)
        ticket = await entrance.admit(request, key, info, estimate=estimate_messages(document),
                                      dialect="anthropic", stream=stream)
        beta = request.headers.get(BETA_HEADER)
        call = Call(name, dialect="anthropic",
                    decode=lambda: decode_messages_request(document, beta=beta),
                    raw=_raw_call(request, body, document, stream=stream),
                    translation=key.translation, words=anthropic_refusal)
        answer = self._stream if stream else self._complete
        return await entrance.metered(request, ticket, lambda: answer(call, ticket, name))

    async def count_tokens(self, request: Request) -> Response:
        settle_dialect(request, "anthropic")
        entrance = self.entrance
        key = await entrance.caller(request)
        document = read_messages_document(await entrance.body(request),
                                          require_max_tokens=False)
        name: str = document["model"]
        entrance.check_access(request, key, self._model(name))  # a count is not metered
        # An Anthropic upstream counts the caller's own request; others count its translation.
        raw = RawCall(body=b"", version="v1", method="count_tokens", document=document,
                      headers=caller_headers(request.headers),
                      query=caller_query(request.query_params))
        call = Call(name, dialect="anthropic", decode=lambda: decode_messages_request(document),
                    raw=raw, translation=key.translation, words=anthropic_refusal)
        outcome = await entrance.gateway.count_tokens(call)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=outcome.raw.content_type)
        assert outcome.total is not None
        return Response(encode_count_tokens(outcome.total), media_type=JSON_TYPE)

    async def _complete(self, call: Call, ticket: Ticket, name: str) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.generate(call)
        dropped = dropped_header(outcome.dropped, anthropic_path, ticket)  # before the record
        await entrance.finish(ticket, outcome.usage, outcome.served_by)
        headers = await entrance.answer_headers(ticket, outcome.served_by)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=JSON_TYPE, headers=headers)
        assert outcome.response is not None
        return Response(encode_message(outcome.response, name), media_type=JSON_TYPE,
                        headers={**headers, **dropped})

    async def _stream(self, call: Call, ticket: Ticket, name: str) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.stream(call)
        headers = await entrance.answer_headers(ticket, outcome.served_by)
        on_end = entrance.on_end(ticket, outcome.served_by)
        if outcome.raw is not None:
            relayed = forwarded_stream(first_byte(ticket, outcome.raw),
                                       framing=ForwardedAnthropicFraming(), on_end=on_end,
                                       usage=outcome.usage)
            return CallerStream(relayed, on_end=on_end, media_type=SSE_TYPE, headers=headers)
        assert outcome.events is not None
        body = encoded_stream(MessageStreamEncoder(name), first_byte(ticket, outcome.events),
                              on_end, outcome.usage)
        dropped = dropped_header(outcome.dropped, anthropic_path, ticket)
        return CallerStream(body, on_end=on_end, media_type=SSE_TYPE,
                            headers={**headers, **dropped})

    def _model(self, name: str) -> ModelInfo:
        info = self.entrance.model(name)
        if info is None:
            raise NotFound(f"model: {name}")  # Anthropic's own wording for an unknown model
        return info


def _raw_call(request: Request, body: bytes, document: dict[str, Any], *, stream: bool
              ) -> RawCall:
    """The caller's request for an Anthropic upstream: its bytes, the headers that say what
    they mean, and its `beta` query flag."""
    return RawCall(body=body, version="v1", method="messages", document=document,
                   stream=stream, headers=caller_headers(request.headers),
                   query=caller_query(request.query_params))
