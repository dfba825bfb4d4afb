"""A gateway whose models reach fake upstreams in process — the shared OpenAI-compatible one
("fake") and a Gemini one ("gem") above all — for tests of what a translation sends each kind.

"worker" reaches the OpenAI-compatible fake as the local model's provider reaches its worker:
it translates every caller's request (it forwards no one's bytes) and counts tokens. "ant"
reaches a fake Anthropic upstream."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from cometgate.app import create_app
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.providers.anthropic_upstream import AnthropicUpstream
from cometgate.providers.base import Provider
from cometgate.providers.gemini import GeminiProvider
from cometgate.providers.http import TokenizingHttpProvider
from cometgate.providers.timeouts import Timeouts
from cometgate.settings import Settings, load_settings
from tests.api.conftest import create_key
from tests.conftest import FAKE_MODELS_YAML
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

_GEMINI_MODELS: dict[str, Any] = {
    "gem-budget": {"provider": "gem", "upstream_model": "gemini-up", "input_token_limit": 1000,
                   "output_token_limit": 500,
                   "thinking": {"style": "budget", "budget_min": 128, "budget_max": 24576}},
    "gem-levels": {"provider": "gem", "upstream_model": "gemini-up", "input_token_limit": 1000,
                   "output_token_limit": 500,
                   "thinking": {"style": "levels", "levels": ["LOW", "HIGH"]}},
    "gem-plain": {"provider": "gem", "upstream_model": "gemini-up", "input_token_limit": 1000,
                  "output_token_limit": 500},
}


@dataclass
class TwoUpstreams:
    http: httpx.AsyncClient
    key: str
    openai: FakeOpenAIUpstream
    gemini: FakeGeminiUpstream
    settings: Settings
    anthropic: FakeAnthropicUpstream

    async def key_with(self, translation: str) -> str:
        """A new key whose translation policy overrides the models'."""
        return await create_key(self.settings, translation, translation=translation)

    def gemini_bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(seen.body) for seen in self.gemini.requests]


def two_upstream_settings(tmp_path: Path, models: dict[str, Any] | None = None) -> Settings:
    config: dict[str, Any] = yaml.safe_load(FAKE_MODELS_YAML)
    config["providers"]["gem"] = {"kind": "gemini", "base_url": "http://fake-gemini",
                                  "api_key": "env:CG_TEST_GEMINI"}
    config["providers"]["worker"] = {"kind": "openai", "base_url": "http://fake-upstream/v1",
                                     "tokenize_endpoint": True}
    config["providers"]["ant"] = {"kind": "anthropic", "base_url": "http://fake-anthropic",
                                  "api_key": "env:CG_TEST_ANTHROPIC"}
    config["models"].update({**_GEMINI_MODELS, **(models or {})})
    path = tmp_path / "two-upstreams.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"HOME": str(tmp_path), "CG_TEST_GEMINI": "gm-secret",
           "CG_TEST_ANTHROPIC": "sk-ant-secret"}
    return load_settings(path, data_dir=tmp_path / "two-data", env=env)


@contextlib.asynccontextmanager
async def two_upstreams(
    tmp_path: Path, fake_provider: Provider, openai: FakeOpenAIUpstream,
    models: dict[str, Any] | None = None,
) -> AsyncIterator[TwoUpstreams]:
    """`models`: more models (or replacements), on "fake" or "gem"."""
    settings = two_upstream_settings(tmp_path, models)
    gemini = FakeGeminiUpstream()
    gem = GeminiProvider("gem", base_url="http://fake-gemini", api_key="gm-secret",
                         timeouts=Timeouts(),
                         client=httpx.AsyncClient(transport=httpx.ASGITransport(app=gemini.app)))
    worker = TokenizingHttpProvider(
        "worker", base_url="http://fake-upstream/v1",
        options=OpenAIOptions(accepts_top_k=True, supports_reasoning=True), timeouts=Timeouts(),
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=openai.app)))
    anthropic = FakeAnthropicUpstream()
    ant = AnthropicUpstream(
        "ant", base_url="http://fake-anthropic", api_key="sk-ant-secret",
        options=AnthropicOptions(), timeouts=Timeouts(),
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=anthropic.app)))
    key = await create_key(settings)
    app = create_app(settings, providers={"fake": fake_provider, "gem": gem, "worker": worker,
                                          "ant": ant})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            yield TwoUpstreams(http, key, openai, gemini, settings, anthropic)
