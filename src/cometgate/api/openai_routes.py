"""The OpenAI dialect's surface: `POST /v1/chat/completions` (also without `/v1`, for clients
configured with the server root) and the OpenAI side of `GET /v1/models`.

A model whose upstream speaks OpenAI gets the caller's request as it is (pass-through); any
other is reached through the canonical model, like a Gemini caller's request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance, dropped_header, embedding_estimate, first_byte
from cometgate.api.streams import CallerStream, encoded_stream, forwarded_stream
from cometgate.canonical import Usage
from cometgate.dialects.openai.billable import billable as chat_billable
from cometgate.dialects.openai.embeddings import (
    decode_embeddings_request,
    encode_embeddings_response,
)
from cometgate.dialects.openai.inbound import (
    decode_chat_request,
    estimate_chat,
    read_chat_document,
    wants_stream,
    wants_usage_in_stream,
)
from cometgate.dialects.openai.inbound_response import (
    encode_chat_completion,
    encode_model,
    encode_model_list,
)
from cometgate.dialects.openai.inbound_stream import ChatChunkEncoder
from cometgate.dialects.openai.passthrough import ForwardedOpenAIFraming
from cometgate.dialects.openai.paths import openai_path
from cometgate.dialects.openai.refusals import openai_refusals
from cometgate.errors import NotFound
from cometgate.metering import Ticket
from cometgate.pipeline import Call
from cometgate.providers.base import RawCall

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"


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
        settle_dialect(request, "openai")
        entrance = self.entrance
        key = await entrance.caller(request)
        document = read_chat_document(await entrance.body(request))
        name: str = document["model"]
        request.scope["state"]["model"] = name  # a 404 names it, as OpenAI's does
        info = entrance.model(name)
        if info is None:
            raise NotFound(f"The model `{name}` does not exist.")
        stream = wants_stream(document)
        include_usage = wants_usage_in_stream(document)
        ticket = await entrance.admit(request, key, info, estimate=estimate_chat(document),
                                      dialect="openai", stream=stream,
                                      billable=chat_billable(document))
        call = Call(
            name,
            dialect="openai",
            decode=lambda: decode_chat_request(document),
            raw=RawCall(body=b"", version="v1", method="chat", document=document,
                        stream=stream),
            translation=key.translation,
            words=openai_refusals(document),
        )
        if stream:
            return await entrance.metered(
                request, ticket, lambda: self._stream(call, ticket, name, include_usage))
        return await entrance.metered(request, ticket, lambda: self._complete(call, ticket, name))

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

    async def _complete(self, call: Call, ticket: Ticket, name: str) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.generate(call)
        dropped = dropped_header(outcome.dropped, openai_path, ticket)  # before the record
        await entrance.finish(ticket, outcome.usage, outcome.served_by)
        headers = await entrance.answer_headers(ticket, outcome.served_by)
        if outcome.raw is not None:
            return Response(outcome.raw.body, media_type=JSON_TYPE, headers=headers)
        assert outcome.response is not None
        return Response(encode_chat_completion(outcome.response, name), media_type=JSON_TYPE,
                        headers={**headers, **dropped})

    async def _stream(
        self, call: Call, ticket: Ticket, name: str, include_usage: bool
    ) -> Response:
        entrance = self.entrance
        outcome = await entrance.gateway.stream(call)
        headers: dict[str, Any] = await entrance.answer_headers(ticket, outcome.served_by)
        on_end = entrance.on_end(ticket, outcome.served_by)
        if outcome.raw is not None:
            body = forwarded_stream(first_byte(ticket, outcome.raw),
                                    framing=ForwardedOpenAIFraming(), on_end=on_end,
                                    usage=outcome.usage)
            return CallerStream(body, on_end=on_end, media_type=SSE_TYPE, headers=headers)
        assert outcome.events is not None
        encoder = ChatChunkEncoder(name, include_usage=include_usage)
        body = encoded_stream(encoder, first_byte(ticket, outcome.events), on_end,
                              outcome.usage)
        return CallerStream(body, on_end=on_end, media_type=SSE_TYPE,
                            headers={**headers, **dropped_header(outcome.dropped,
                                                                 openai_path, ticket)})
