"""The Anthropic dialect's surface: `POST /v1/messages`, `POST /v1/messages/count_tokens`
and the Anthropic side of `GET /v1/models`. A model whose upstream speaks Anthropic gets the
caller's request as it is (pass-through); any other is reached through the canonical model.
The key may come in `x-api-key`, as Anthropic's clients send it."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance
from cometgate.api.frame import RequestFrame
from cometgate.canonical import ModelInfo
from cometgate.dialects.anthropic.caller_request import (
    decode_messages_request,
    read_messages_document,
)
from cometgate.dialects.anthropic.caller_response import encode_count_tokens
from cometgate.dialects.anthropic.count_tokens import caller_headers, caller_query
from cometgate.dialects.anthropic.models import encode_model, encode_model_list
from cometgate.dialects.anthropic.refusals import anthropic_refusal
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.errors import NotFound
from cometgate.pipeline import Call
from cometgate.providers.base import RawCall

JSON_TYPE = "application/json"


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
        return await RequestFrame(self.entrance).serve(request, CALLER_CODECS["anthropic"])

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

    def _model(self, name: str) -> ModelInfo:
        info = self.entrance.model(name)
        if info is None:
            raise NotFound(f"model: {name}")  # Anthropic's own wording for an unknown model
        return info
