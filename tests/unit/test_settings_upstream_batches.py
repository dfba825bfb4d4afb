"""A provider's `batch:` option (who runs its models' Gemini batches), the batch price
factor, and `batches.upstream_poll_seconds`: defaults, every accepted value, and the
refusals, word for word."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cometgate.canonical import ModelInfo, Usage
from cometgate.pricing import PriceBook
from cometgate.settings import (
    BATCH_PRICE_FACTOR,
    AnthropicProviderSettings,
    CandidateSettings,
    ConfigError,
    GeminiProviderSettings,
    ModelSettings,
    OpenAIProviderSettings,
    PriceVersion,
    Settings,
    load_settings,
)

BASES = {"gemini": "", "openai": ", base_url: 'http://127.0.0.1:9/v1'",
         "anthropic": ""}


MODEL = ("models:\n  m: {provider: p, upstream_model: m, input_token_limit: 10, "
         "output_token_limit: 10}\n")


def _load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "cometgate.yaml"
    config.write_text(text + (MODEL if "providers:" in text and "models:" not in text
                              else ""), encoding="utf-8")
    return load_settings(config, env={"HOME": str(tmp_path)})


def _batch_of(settings: Settings) -> str:
    spec = settings.provider("p")
    assert isinstance(spec, (GeminiProviderSettings, OpenAIProviderSettings,
                             AnthropicProviderSettings))
    return spec.batch


@pytest.mark.parametrize("kind", list(BASES))
def test_each_kind_with_a_batch_api_takes_gateway_or_upstream(tmp_path: Path,
                                                              kind: str) -> None:
    default = _load(tmp_path, f"providers:\n  p: {{kind: {kind}{BASES[kind]}}}\n")
    assert _batch_of(default) == "gateway"
    for route in ("gateway", "upstream"):
        loaded = _load(tmp_path,
                       f"providers:\n  p: {{kind: {kind}{BASES[kind]}, batch: {route}}}\n")
        assert _batch_of(loaded) == route


@pytest.mark.parametrize(("value", "shown"), [
    ("Upstream", "'Upstream'"), ("yes", "True"), ("''", "''"), ("[upstream]", "['upstream']")])
def test_another_batch_value_is_refused(tmp_path: Path, value: str, shown: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f"providers:\n  p: {{kind: gemini, batch: {value}}}\n")
    assert str(refused.value) == (
        "providers.p.batch must be gateway (the gateway's own workers run its batches) or "
        f"upstream (its own batch API does), not {shown}")


@pytest.mark.parametrize("kind", ["local", "local_embedding"])
def test_batch_on_a_kind_without_a_batch_api_is_refused(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, f"providers:\n  p: {{kind: {kind}, batch: upstream}}\n")
    assert str(refused.value) == (
        f"providers.p.batch: a {kind} provider has no batch API to hand batches to; only "
        "gemini, openai and anthropic providers take batch: upstream (its batches run on "
        "the gateway's own workers)")


def test_the_upstream_poll_interval(tmp_path: Path) -> None:
    assert _load(tmp_path, "server: {port: 8080}\n").batches.upstream_poll_seconds == 30.0
    loaded = _load(tmp_path, "batches: {upstream_poll_seconds: 0.5}\n")
    assert loaded.batches.upstream_poll_seconds == 0.5
    for bad in ("0", "4000"):
        with pytest.raises(ConfigError) as refused:
            _load(tmp_path, f"batches: {{upstream_poll_seconds: {bad}}}\n")
        assert str(refused.value) == (
            "batches.upstream_poll_seconds must be between 0.01 and 3600")


def _book(*tiers: tuple[str, Decimal]) -> PriceBook:
    info = ModelInfo(id="m", display_name="m", description="", version="1",
                     base_model_id="m", input_token_limit=1000, output_token_limit=100)
    price = PriceVersion(input=Decimal(1), output=Decimal(4), service_tiers=tiers)
    return PriceBook([ModelSettings(info, (CandidateSettings("p", "m"),), prices=(price,))])


def test_the_batch_tier_costs_half_unless_the_operator_prices_it() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    live = Usage(1000, 100)
    batch = Usage(1000, 100, service_tier="batch")
    assert BATCH_PRICE_FACTOR == Decimal("0.5")
    assert _book().cost("m", live, at) == Decimal("0.0014")  # 1000*1 + 100*4 per million
    assert _book().cost("m", batch, at) == Decimal("0.0007")
    assert _book(("batch", Decimal("0.4"))).cost("m", batch, at) == Decimal("0.00056")


def test_a_config_file_sets_the_batch_factor(tmp_path: Path) -> None:
    settings = _load(tmp_path, """
providers:
  p: {kind: gemini, batch: upstream}
models:
  m:
    provider: p
    upstream_model: m
    input_token_limit: 1000
    output_token_limit: 100
    prices: {input: 1, output: 4, service_tiers: {batch: 0.25}}
""")
    spec = settings.model("m")
    assert spec is not None and spec.prices[0].tier_factor("batch") == Decimal("0.25")
