"""Every scenario of the contract table against every provider kind (see scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cometgate.settings import ConfigError
from tests.contract.conftest import KINDS, Fakes, Gateway, settings_for
from tests.contract.scenarios import SCENARIOS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_contract(name: str, kind: str, gateway: Gateway, fakes: Fakes) -> None:
    await SCENARIOS[name](kind, gateway, fakes)


def test_thinking_on_openai_without_reasoning_is_refused_at_load(tmp_path: Path) -> None:
    """An OpenAI-compatible upstream without `supports_reasoning` cannot serve a thinking
    model: the configuration says so before any request is made."""
    config = {
        "providers": {"plain": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {"thinker": {"provider": "plain", "input_token_limit": 10,
                               "output_token_limit": 10,
                               "thinking": {"style": "budget", "budget_max": 1024}}},
    }
    with pytest.raises(ConfigError) as refused:
        settings_for(tmp_path, config, {})
    assert str(refused.value) == (
        "models.thinker.thinking needs providers.plain.supports_reasoning: true")
