"""A gateway app with the console on (an admin key set), on the shared fake upstream, and a
client that can sign in and send the console's forms with their CSRF token."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.settings import Settings, load_settings
from tests.conftest import FAKE_MODELS_YAML

ADMIN_KEY = "console-admin-key-0123456789"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings(tmp_path: Path, *, admin_key: str | None = ADMIN_KEY) -> Settings:
    config = tmp_path / "cometgate.yaml"
    # Key lookups trusted for a millisecond only, so a revocation shows on the next call.
    text = FAKE_MODELS_YAML.replace("server: {metrics: open}",
                                    "server: {metrics: open, auth_cache_seconds: 0.001}")
    assert text != FAKE_MODELS_YAML
    config.write_text(text, encoding="utf-8")
    env = {"HOME": str(tmp_path)} | ({"COMETGATE_ADMIN_KEY": admin_key} if admin_key else {})
    return load_settings(config, data_dir=tmp_path / "data", env=env)


class Console:
    def __init__(self, http: httpx.AsyncClient, app: Starlette) -> None:
        self.http, self.app = http, app
        self.csrf = ""

    async def sign_in(self) -> None:
        response = await self.http.post("/console/signin", data={"admin_key": ADMIN_KEY})
        assert response.status_code == 303, response.text
        page = await self.http.get("/console/keys")
        self.csrf = csrf_of(page.text)

    async def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.csrf, **(data or {})})

    async def create_key(self, name: str, **fields: str) -> tuple[int, str]:
        """Creates a key through the form; returns its id and the key shown once."""
        response = await self.post("/console/keys", {"name": name, **fields})
        assert response.status_code == 201, response.text
        key = re.search(r'<code id="new-key">([^<]+)</code>', response.text)
        key_id = re.search(r'href="/console/keys/(\d+)"', response.text)
        assert key and key_id
        return int(key_id.group(1)), key.group(1)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


@contextlib.asynccontextmanager
async def opened_console(settings: Settings, provider: Provider) -> AsyncIterator[Console]:
    app = create_app(settings, providers={"fake": provider})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            yield Console(http, app)
