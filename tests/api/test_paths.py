"""The same surface under /v1beta, /v1 and no version; JSON answers for every miss."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.settings import Settings
from tests.api.bodies import SMOL, error_of, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream

PREFIXES = ["/v1beta", "/v1", ""]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_generate_under_every_version(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, prefix: str
) -> None:
    response = await client.post(f"{prefix}/models/{SMOL}:generateContent", json=text_body())
    assert response.status_code == 200
    assert response.json()["modelVersion"] == SMOL
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_every_route_under_every_version(client: httpx.AsyncClient, prefix: str) -> None:
    stream = await client.post(f"{prefix}/models/{SMOL}:streamGenerateContent?alt=sse",
                               json=text_body())
    count = await client.post(f"{prefix}/models/{SMOL}:countTokens", json=text_body())
    listing = await client.get(f"{prefix}/models")
    model = await client.get(f"{prefix}/models/{SMOL}")
    assert [r.status_code for r in (stream, count, listing, model)] == [200] * 4
    assert stream.content.startswith(b"data: {")


@pytest.mark.parametrize("path", [f"//v1beta/models/{SMOL}:generateContent",
                                  f"/v1beta//models/{SMOL}:generateContent"])
async def test_doubled_slashes_are_tolerated(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.post(path, json=text_body())).status_code == 200


@pytest.mark.parametrize("path", ["/v1beta/nothing", "/v2/models", "/", "/v1beta/tunedModels"])
async def test_unknown_path_is_json_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert error_of(response.content)["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "method, path",
    [("DELETE", f"/v1beta/models/{SMOL}"), ("PUT", "/v1beta/models"),
     ("POST", "/v1beta/models"), ("POST", "/healthz")],
)
async def test_wrong_method_is_json_405(client: httpx.AsyncClient, method: str,
                                        path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    error = error_of(response.content)
    assert error["code"] == 405 and method in error["message"]


@pytest.mark.parametrize(
    "method, path",
    [("POST", f"/v1beta/models/{SMOL}:frobnicate"),
     ("GET", f"/v1beta/models/{SMOL}:generateContent"),
     ("POST", f"/v1beta/models/{SMOL}")],
)
async def test_unknown_colon_method_is_404(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, method: str, path: str
) -> None:
    response = await client.request(method, path, json=text_body())
    assert response.status_code == 404
    assert "Method not found" in error_of(response.content)["message"]
    assert upstream.requests == []


async def test_a_caller_leaving_mid_body_is_not_an_error_of_ours(
    settings: Settings, fake_provider: Provider, api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What uvicorn delivers when the connection drops mid-body: part of it, then a disconnect.
    app = create_app(settings, providers={"fake": fake_provider})
    messages = [
        {"type": "http.request", "body": b'{"contents":', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": f"/v1beta/models/{SMOL}:generateContent", "raw_path": b"",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("gateway", 80),
        "headers": [(b"x-goog-api-key", api_key.encode()), (b"content-length", b"1000")],
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert sent[0]["status"] == 499
