"""A provider kind is one record: registering a new one (here `compatible`, an OpenAI-compatible
upstream at a fixed base URL) makes the `providers` section parse it, the model check consult
it, the gateway build it and telemetry name it, with no other module touched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.otel import upstreams_of
from cometgate.providers.base import Provider
from cometgate.providers.openai_upstream import OpenAIUpstream, http_provider
from cometgate.providers.registry import BuildContext, build_providers, builder
from cometgate.providers.timeouts import Timeouts
from cometgate.settings import ConfigError, ModelSettings, Settings, load_settings
from cometgate.settings.fields import Fields
from cometgate.settings.sections.providers import PROVIDER_KINDS, ProviderKind


@dataclass(frozen=True, slots=True)
class CompatibleSettings:
    name: str
    base_url: str


def parse_compatible(name: str, where: str, data: Mapping[str, Any],
                     env: Mapping[str, str]) -> CompatibleSettings:
    return CompatibleSettings(name, Fields(where, data, {"kind", "base_url"})
                              .require("base_url", str))


def check_compatible(spec: ModelSettings, found: Any) -> None:
    if spec.info.top_k is not None:
        raise ConfigError(f"models.{spec.info.id}.top_k: providers.{found.name} has no top_k")


def build_compatible(spec: CompatibleSettings, settings: Settings,
                     context: BuildContext) -> Provider:
    return http_provider(spec.name, base_url=spec.base_url, options=OpenAIOptions(),
                         timeouts=Timeouts())


COMPATIBLE = ProviderKind("compatible", CompatibleSettings, parse_compatible,
                          f"{__name__}:build_compatible", check_compatible, "compatible")
KINDS = {**PROVIDER_KINDS, "compatible": COMPATIBLE}


def _config(tmp_path: Path, model_extra: str = "") -> Path:
    path = tmp_path / "cometgate.yaml"
    path.write_text(
        "providers:\n"
        "  near: {kind: compatible, base_url: 'http://127.0.0.1:9/v1'}\n"
        "models:\n"
        f"  m: {{provider: near, upstream_model: up, input_token_limit: 1000,\n"
        f"      output_token_limit: 100{model_extra}}}\n",
        encoding="utf-8",
    )
    return path


def test_a_registered_kind_is_parsed_built_and_named(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), env={"HOME": str(tmp_path)}, kinds=KINDS)
    assert settings.providers == (CompatibleSettings("near", "http://127.0.0.1:9/v1"),)
    built = build_providers(settings, KINDS)
    assert isinstance(built["near"], OpenAIUpstream)
    assert built["near"].name == "near"
    assert upstreams_of(settings, KINDS)["near"].system == "compatible"


def test_a_registered_kind_checks_the_models_that_use_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^models\.m\.top_k: providers\.near has no top_k$"):
        load_settings(_config(tmp_path, ", top_k: 40"), env={"HOME": str(tmp_path)},
                      kinds=KINDS)


def test_without_its_record_the_kind_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path), env={"HOME": str(tmp_path)})
    assert str(caught.value) == ("providers.near.kind must be one of: local, local_embedding, "
                                 "openai, gemini, anthropic")


def test_settings_of_an_unregistered_kind_cannot_be_built(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path), env={"HOME": str(tmp_path)}, kinds=KINDS)
    with pytest.raises(LookupError, match="no registered kind parses into CompatibleSettings"):
        build_providers(settings)


@pytest.mark.parametrize("kind", PROVIDER_KINDS.values(), ids=lambda kind: kind.name)
def test_every_registered_builder_is_found(kind: ProviderKind) -> None:
    assert callable(builder(kind))


@pytest.mark.parametrize(("reference", "words"), [
    ("cometgate.providers.registry:build_nothing", "is not a function"),
    ("cometgate.providers.nowhere:build", "cannot import cometgate.providers.nowhere"),
])
def test_a_record_naming_no_builder_fails_by_name(reference: str, words: str) -> None:
    with pytest.raises(LookupError, match=f"provider kind 'compatible': .*{words}"):
        builder(replace(COMPATIBLE, builder=reference))
