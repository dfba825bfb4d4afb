"""`GET /v1/models` and `GET /v1/models/{id}`, which Google, OpenAI and Anthropic all serve
with different bodies: answered in the dialect the caller's headers name (`caller_dialect`).
Everything else under /v1/models/ (`…:generateContent` and kin) is Gemini's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.anthropic_routes import AnthropicApi
from cometgate.api.caller_dialect import sniffed_dialect
from cometgate.api.gemini_routes import GeminiApi
from cometgate.api.middleware import MODEL_RESOURCE
from cometgate.api.openai_routes import OpenAIApi


def shared_model_routes(
    gemini: GeminiApi, openai: OpenAIApi, anthropic: AnthropicApi
) -> list[BaseRoute]:
    async def list_models(request: Request) -> Response:
        match sniffed_dialect(request):
            case "openai":
                return await openai.list_models(request)
            case "anthropic":
                return await anthropic.list_models(request)
        return await gemini.list_models(request)

    async def model(request: Request) -> Response:
        name: str = request.path_params["name"]
        if request.method == "GET" and ":" not in name:
            match sniffed_dialect(request):
                case "openai":
                    return await openai.get_model(request, name)
                case "anthropic":
                    return await anthropic.get_model(request, name)
        return await gemini.model_call(request)

    return [
        Route("/v1/models", list_models, methods=["GET"], name="models.list"),
        Route("/v1/models/{name:path}", model, methods=["GET", "POST"], name=MODEL_RESOURCE),
    ]
