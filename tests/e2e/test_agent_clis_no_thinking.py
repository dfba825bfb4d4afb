"""Claude Code with stock settings on models that do not think. Claude Code (2.1) asks
every model for adaptive thinking and has no fallback that turns thinking off; adaptive
thinking lets the model decide whether to think, so a model that cannot think answers
without thinking (named in x-cometgate-dropped), and the upstream is asked for none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.scenarios import received, script_text
from tests.e2e.agent_clis import Workspace, outcome, run_claude
from tests.e2e.fake_upstreams_live import FakesGateway, serve_before_fakes


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
         ) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "agent-clis-no-thinking")


# Anthropic-kind models are forwarded as they are: Anthropic's API decides about thinking.
@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_claude_code_with_stock_settings(live: FakesGateway, tmp_path: Path, kind: str) -> None:
    script_text(kind, live.fakes, "Hello without a thought.")
    done = run_claude(live.gateway, Workspace.under(tmp_path), "Say hello", model=f"{kind}-text")
    assert done.returncode == 0, outcome(done)
    assert "Hello without a thought." in done.stdout
    sent = received(kind, live.fakes)
    assert "reasoning_effort" not in sent
    assert "thinkingConfig" not in sent.get("generationConfig", {})
