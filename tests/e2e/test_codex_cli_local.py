"""The real Codex CLI on the bundled model, on the gateway's embedded defaults: a plain turn.

Codex's stock prompt is some 9,000 tokens, which the local model's 16,384-token default context
holds; a 135M model on two CPU cores reads it in tens of seconds (46 s on a quiet machine),
hence the longer bound. The model has no search, so Codex's web_search tool stays disabled, as
the README's "Agent CLIs" section says for every model without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.test_codex_cli import _explain, codex_exec

pytestmark = [pytest.mark.model, pytest.mark.slow]

LOCAL_RUN_SECONDS = 240.0


def test_codex_answers_from_the_bundled_model(gateway: LiveGateway, tmp_path: Path) -> None:
    done = codex_exec(gateway, MODEL, "Say hello in one short sentence.", tmp_path,
                      seconds=LOCAL_RUN_SECONDS)
    assert done.returncode == 0, _explain(done)
    assert done.stdout.strip(), _explain(done)
