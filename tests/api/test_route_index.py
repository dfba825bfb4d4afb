"""The indexed router picks, for every path and method, the route Starlette's own loop picks:
the first full match in table order. Checked over the real app's table (console on, so mounts
are in it) with a path made from every route and the awkward cases between them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Match, Route

from cometgate.api.route_index import IndexedRouter
from cometgate.app import create_app
from tests.api.console_client import console_settings

METHODS = ("GET", "POST", "DELETE", "PATCH", "HEAD", "PUT")
AWKWARD = (
    "/", "/healthz", "/healthz/", "/v1beta/models", "/v1beta/models/", "/v1beta/models/m",
    "/v1beta/models/m:generateContent", "/v1beta/models/a/b:streamGenerateContent",
    "/v1beta/models/m:batchGenerateContent", "/v1/models/m:batchGenerateContent",
    "/models/m:countTokens", "/v1beta/batches/b1:cancel", "/v1beta/batches/b1",
    "/v1/responses/input_tokens", "/v1/responses/resp_1", "/v1/responses/resp_1/cancel",
    "/console", "/console/", "/console/keys/12", "/console/static/app.css", "/nowhere",
    "/v1beta/nowhere/x", "/v1beta", "/upload/v1beta/files", "/v1beta/cachedContents/c1",
    "/admin/keys/3/rotate", "/v1/chat/completions", "/chat/completions", "/v1/messages",
)


def _sample(path: str) -> str:
    """A request path the route's pattern names: each parameter filled with plain text."""
    return re.sub(r"\{[^}:]+:path\}", "p/q", re.sub(r"\{[^}:]+(:int)?\}",
                  lambda m: "7" if m.group(1) else "x", path))


def _linear(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    return next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)


def _indexed(router: IndexedRouter, path: str, method: str) -> BaseRoute | None:
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    router._build()
    return next((r for r in router._candidates(path) if r.matches(scope)[0] is Match.FULL),
                None)


def test_every_path_finds_the_route_the_linear_scan_finds(tmp_path: Path) -> None:
    app = create_app(console_settings(tmp_path))
    router = app.router
    assert isinstance(router, IndexedRouter)
    paths = {_sample(getattr(r, "path", "/")) for r in router.routes} | set(AWKWARD)
    checked = 0
    for path in sorted(paths):
        for method in METHODS:
            expected = _linear(router.routes, path, method)
            assert _indexed(router, path, method) is expected, (method, path)
            checked += expected is not None
    assert checked > 100  # the comparison ran over real matches, not only misses


def test_a_generate_call_tries_a_handful_of_routes_not_the_table(tmp_path: Path) -> None:
    app = create_app(console_settings(tmp_path))
    router = app.router
    assert isinstance(router, IndexedRouter)
    router._build()
    candidates = router._candidates("/v1beta/models/gem:generateContent")
    assert len(candidates) <= 5 < len(router.routes) // 10
    assert any(getattr(r, "name", "") == "models.get" for r in candidates)


@pytest.mark.asyncio
async def test_answers_through_the_app_are_starlettes(tmp_path: Path) -> None:
    """The misses fall through to Starlette: a wrong method is its 405, an unknown path the
    gateway's 404, and a route added after the first request is found."""
    app = create_app(console_settings(tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.delete("/healthz")).status_code == 405
        assert (await http.get("/no/such/path")).status_code == 404

        async def late(_request: object) -> httpx.Response:
            raise AssertionError("not called")

        app.router.routes.append(Route("/late-route", late, methods=["GET"]))
        assert (await http.post("/late-route")).status_code == 405  # found, wrong method
