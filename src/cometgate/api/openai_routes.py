"""The OpenAI dialect's surface: `POST /v1/chat/completions` (also without `/v1`, for clients
configured with the server root) and the OpenAI side of `GET /v1/models`.

A model whose upstream speaks OpenAI gets the caller's request as it is (pass-through); any
other is reached through the canonical model, like a Gemini caller's request.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance, embedding_estimate
from cometgate.api.frame import RequestFrame
from cometgate.canonical import Usage
from cometgate.dialects.caller_codecs import CALLER_CODECS
from cometgate.dialects.openai.caller_response import (
    encode_model,
    encode_model_list,
)
from cometgate.dialects.openai.embeddings import (
    decode_embeddings_request,
    encode_embeddings_response,
)
from cometgate.errors import NotFound

JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class OpenAIApi:
    entrance: Entrance

    def routes(self) -> list[BaseRoute]:
        return [
            route
            for prefix in ("/v1", "")
            for route in (
                Route(f"{prefix}/chat/completions", self.chat_completions, methods=["POST"],
                      name="chat.completions"),
                Route(f"{prefix}/embeddings", self.embeddings, methods=["POST"], name="embeddings"),
            )
        ]

    async def list_models(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        return Response(encode_model_list(self.entrance.models_for(key)),
                        media_type=JSON_TYPE)

    async def get_model(self, request: Request, name: str) -> Response:
        settle_dialect(request, "openai")
        request.scope["state"]["model"] = name
        key = await self.entrance.caller(request)
        info = self.entrance.model_for(key, name)
        if info is None:
            raise NotFound(f"The model `{name}` does not exist.")
        return Response(encode_model(info), media_type=JSON_TYPE)

    async def chat_completions(self, request: Request) -> Response:
        return await RequestFrame(self.entrance).serve(request, CALLER_CODECS["openai"])

    async def embeddings(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        entrance = self.entrance
        key = await entrance.caller(request)
        embed_request, encoding = decode_embeddings_request(await entrance.body(request))
        name = embed_request.model
        request.scope["state"]["model"] = name
        info = entrance.model(name)
        if info is None:
            raise NotFound(f"The model `{name}` does not exist.")
        ticket = await entrance.admit(request, key, info,
                                      estimate=embedding_estimate(embed_request),
                                      dialect="openai", stream=False)

        async def answer() -> Response:
            outcome = await entrance.gateway.embed(embed_request)
            usage = Usage(prompt_tokens=outcome.response.prompt_tokens)
            await entrance.finish(ticket, usage, outcome.served_by)
            return Response(encode_embeddings_response(outcome.response, name, encoding),
                            media_type=JSON_TYPE, headers=await entrance.limit_headers(ticket))

        return await entrance.metered(request, ticket, answer)
