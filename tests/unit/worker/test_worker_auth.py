"""The worker's token guard: only a request bearing the start's token reaches a route."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cometgate.worker.auth import WorkerTokenGuard

TOKEN = "start-token-0123456789"


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def guarded() -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/health", health)],
                    middleware=[Middleware(WorkerTokenGuard, token=TOKEN)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


async def test_the_token_as_bearer_is_let_through() -> None:
    async with guarded() as http:
        response = await http.get("/health", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [
    {},
    {"authorization": "Bearer wrong-token"},
    {"authorization": f"Bearer {TOKEN}x"},
    {"authorization": f"Basic {TOKEN}"},
    {"authorization": TOKEN},
    {"x-api-key": TOKEN},
])
async def test_anything_else_is_refused_401(headers: dict[str, str]) -> None:
    async with guarded() as http:
        response = await http.get("/health", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {
        "message": "This worker answers only the gateway that started it.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
