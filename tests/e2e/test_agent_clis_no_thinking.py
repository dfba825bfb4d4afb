"""Claude Code on remote models that do not think: the README's `MAX_THINKING_TOKENS=0` (given
for the bundled model) is what any such model needs, and with it a plain turn works.

Without it Claude Code (2.1) asks for adaptive thinking, is told `thinking.type: adaptive
thinking is not supported on this model …`, and retries once with a fixed thinking budget,
which a model without thinking refuses too: Claude Code has no fallback that turns thinking off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.scenarios import received, script_text
from tests.e2e.agent_clis import Workspace, outcome, readme_exports, run_claude
from tests.e2e.fake_upstreams_live import FakesGateway, serve_before_fakes


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
         ) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "agent-clis-no-thinking")


# Anthropic-kind models are forwarded as they are: Anthropic's API decides about thinking.
@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_claude_code_with_the_readme_setting(live: FakesGateway, tmp_path: Path,
                                             kind: str) -> None:
    setting = readme_exports("MAX_THINKING_TOKENS", live.gateway)["MAX_THINKING_TOKENS"]
    assert setting == "0"
    script_text(kind, live.fakes, "Hello without a thought.")
    done = run_claude(live.gateway, Workspace.under(tmp_path), "Say hello",
                      model=f"{kind}-text", extra_env={"MAX_THINKING_TOKENS": setting})
    assert done.returncode == 0, outcome(done)
    assert "Hello without a thought." in done.stdout
    sent = received(kind, live.fakes)
    assert "reasoning_effort" not in sent
    assert "thinkingConfig" not in sent.get("generationConfig", {})
