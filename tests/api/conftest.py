"""Fixtures for API tests that need settings other than the shared ones: a settings builder
over the shared model table, and a client factory that wires an app to the fake upstream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.providers.base import Provider
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.conftest import FAKE_MODELS_YAML

SettingsBuilder = Callable[..., Settings]
ClientOpener = Callable[[Settings], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def build_settings(tmp_path: Path) -> SettingsBuilder:
    """Settings like the shared ones, with `server` options and extra or replaced models."""

    def build(
        server: dict[str, Any] | None = None, models: dict[str, Any] | None = None
    ) -> Settings:
        config: dict[str, Any] = yaml.safe_load(FAKE_MODELS_YAML)
        config["models"].update(models or {})
        if server:
            config["server"] = server
        path = tmp_path / "custom.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return load_settings(path, data_dir=tmp_path / "custom-data", env={"HOME": str(tmp_path)})

    return build


async def create_key(
    settings: Settings, name: str = "tests", *, translation: str | None = None
) -> str:
    database = await open_database(settings.database_url)
    try:
        _, key = await KeyRepository(database).create(name, translation=translation)
    finally:
        await database.aclose()
    return key


@pytest.fixture
def open_client(fake_provider: Provider) -> ClientOpener:
    """An app on `settings` and the shared fake upstream, and a client without a key."""

    @contextlib.asynccontextmanager
    async def opened(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, providers={"fake": fake_provider})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway"
            ) as http:
                yield http

    return opened


class AppWithRecords:
    """An app on the shared settings and fake upstream, a client with the caller's headers,
    and the usage records the app wrote."""

    def __init__(self, http: httpx.AsyncClient, app: Starlette, settings: Settings) -> None:
        self.http, self.app, self.settings = http, app, settings

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()  # journaled at once, committed in batches
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


OpenAppWithRecords = Callable[
    [dict[str, str]], contextlib.AbstractAsyncContextManager[AppWithRecords]]


@pytest.fixture
def open_app(settings: Settings, fake_provider: Provider) -> OpenAppWithRecords:
    @contextlib.asynccontextmanager
    async def opened(headers: dict[str, str]) -> AsyncIterator[AppWithRecords]:
        app = create_app(settings, providers={"fake": fake_provider})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://gateway", headers=headers) as http:
                yield AppWithRecords(http, app, settings)

    return opened
