"""Claude Code and Gemini CLI on the bundled model, on the gateway's embedded defaults, with
exactly the settings the README's "Agent CLIs" section gives: a plain turn each.

Gemini CLI's stock prompt (about 7,000 to 8,500 tokens with its tools) is what the local model's
16,384-token default context is for; a 135M model on two CPU cores reads it in seconds to tens
of seconds, hence the longer bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.agent_clis import (
    Workspace,
    outcome,
    readme_exports,
    readme_gemini_settings,
    run_claude,
    run_gemini,
)
from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = [pytest.mark.model, pytest.mark.slow]

LOCAL_RUN_SECONDS = 150.0


def test_gemini_cli_answers_from_the_bundled_model(gateway: LiveGateway, tmp_path: Path
                                                    ) -> None:
    settings = readme_gemini_settings("customAliases")
    assert MODEL in settings["modelConfigs"]["customAliases"]
    done = run_gemini(gateway, Workspace.under(tmp_path), "Say hello in one short sentence.",
                      model=MODEL, settings=settings, seconds=LOCAL_RUN_SECONDS)
    assert done.returncode == 0, outcome(done)
    assert done.stdout.strip(), outcome(done)


def test_claude_code_answers_from_the_bundled_model(gateway: LiveGateway, tmp_path: Path
                                                     ) -> None:
    bundled = readme_exports("--tools", gateway)
    assert bundled == {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "1024"}
    done = run_claude(gateway, Workspace.under(tmp_path), "Say hello in one short sentence.",
                      model=MODEL, extra_env=bundled, args=("--tools", ""),
                      seconds=LOCAL_RUN_SECONDS)
    assert done.returncode == 0, outcome(done)
    assert done.stdout.strip(), outcome(done)
