"""The real Codex CLI (`codex exec`, npm @openai/codex pinned in tests/e2e/js/package.json, its
native binary shipped in the package) through a live cometgate to the three fake upstreams:
a text turn, a turn where the model calls Codex's shell tool and reads the result back, and one
where it calls a tool of Codex's `multi_agent` namespace.

Codex is configured as a user would point it at a gateway: a custom `model_providers` entry
with `wire_api = "responses"`, the gateway's /v1 as `base_url` and the key in `env_key`, in a
temporary CODEX_HOME, analytics and OpenTelemetry export off. Codex offers its `web_search`
built-in tool: Gemini and Anthropic models run it as their own search (Google Search grounding,
the web search server tool) and the answer comes back with the search's item and citations;
the OpenAI-compatible fake has no search, where the gateway refuses it, so for that kind alone
the switch that turns it off is named here, to keep the refusal visible. The
`multi_agent` feature stays on: its `namespace` tools reach the upstreams flattened, and a call
to one comes back namespaced. Codex's reasoning summary wish goes as it is: on the fake models,
which do not think, the gateway drops it and says so.

A missing binary fails the test (run `npm install` in tests/e2e/js); each run is bounded.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import KINDS, Fakes
from tests.contract.scenarios import received, script_text
from tests.e2e.conftest import LiveGateway
from tests.e2e.fake_upstreams_live import script_streamed_calls, serve_before_fakes

CODEX = Path(__file__).parent / "js" / "node_modules" / ".bin" / "codex"
RUN_TIMEOUT_SECONDS = 120
KEY_VARIABLE = "COMETGATE_E2E_CODEX_KEY"
# For a model whose upstream has no web search of its own (the gateway refuses it).
NO_SEARCH_SWITCHES = ("-c", 'web_search="disabled"')
SEARCHING_KINDS = ("gemini", "anthropic")


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    if not CODEX.exists():
        pytest.fail(f"the Codex CLI is missing at {CODEX}: run `npm install` in tests/e2e/js")
    for running in serve_before_fakes(tmp_path_factory, pytestconfig, "codex"):
        yield Live(running.gateway, running.fakes)


@pytest.fixture(autouse=True)
def clean_scripts(live: Live) -> None:
    for fake in (live.fakes.openai, live.fakes.anthropic, live.fakes.gemini):
        fake.replies.clear()


def codex_exec(gateway: LiveGateway, model: str, prompt: str, root: Path,
               seconds: float = RUN_TIMEOUT_SECONDS, *, searches: bool = False,
               ) -> subprocess.CompletedProcess[str]:
    """`searches`: the model runs Codex's web_search; otherwise Codex is told not to offer
    it."""
    home, work = root / "codex-home", root / "work"
    home.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    provider = (f'{{name="cometgate", base_url="{gateway.base_url}/v1", '
                f'env_key="{KEY_VARIABLE}", wire_api="responses", '
                'request_max_retries=0, stream_max_retries=0}')
    argv = [str(CODEX), "exec", "--skip-git-repo-check", "--strict-config", "-C", str(work),
            "-m", model, "-c", 'model_provider="cometgate"',
            "-c", f"model_providers.cometgate={provider}",
            "-c", "analytics.enabled=false", "-c", 'otel.exporter="none"',
            "-c", "check_for_update_on_startup=false",
            # Where bubblewrap is installed (scripts/bootstrap installs it for the gateway's
            # own sandbox), Codex runs commands through it and a helper it links into
            # CODEX_HOME, which it refuses to do under /tmp; the command then fails inside
            # bwrap. These tests are about the gateway carrying Codex's calls, not about
            # Codex's sandbox, so commands run unsandboxed in the test's own work folder.
            "--sandbox", "danger-full-access",
            *(() if searches else NO_SEARCH_SWITCHES), prompt]
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "CODEX_HOME": str(home),
           KEY_VARIABLE: gateway.key}
    return subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=seconds, stdin=subprocess.DEVNULL, check=False)


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_text_turn(live: Live, kind: str, tmp_path: Path) -> None:
    script_text(kind, live.fakes, f"Hello from {kind} through the gateway.")
    done = codex_exec(live.gateway, f"{kind}-text", "Say hello.", tmp_path,
                      searches=kind in SEARCHING_KINDS)
    assert done.returncode == 0, _explain(done)
    assert done.stdout.strip().endswith(f"Hello from {kind} through the gateway."), _explain(done)
    if kind in SEARCHING_KINDS:  # Codex's web_search reached the upstream as its search tool
        assert getattr(live.fakes, kind).searched, _explain(done)


@pytest.mark.parametrize("kind", KINDS)
def test_a_shell_tool_call_and_its_result(live: Live, kind: str, tmp_path: Path) -> None:
    script_streamed_calls(kind, live.fakes, [("exec_command", {"cmd": "echo codex-ran-$((6*7))"})])
    script_text(kind, live.fakes, "The command printed codex-ran-42.")
    done = codex_exec(live.gateway, f"{kind}-text", "Run the echo command.", tmp_path,
                      searches=kind in SEARCHING_KINDS)
    assert done.returncode == 0, _explain(done)
    assert done.stdout.strip().endswith("The command printed codex-ran-42."), _explain(done)
    # The shell really ran (the arithmetic is the shell's), and its output reached the model.
    assert "codex-ran-42" in str(received(kind, live.fakes)), _explain(done)



@pytest.mark.parametrize("kind", KINDS)
def test_a_namespaced_multi_agent_call(live: Live, kind: str, tmp_path: Path) -> None:
    # The model calls close_agent of Codex's multi_agent_v1 namespace under its flat name; Codex
    # runs its own close_agent only if the call comes back as that namespace and name (an
    # unknown name would be answered as an unsupported call), and its refusal of the made-up
    # agent id is the tool output the upstream then reads.
    flat = "multi_agent_v1__close_agent"
    script_streamed_calls(kind, live.fakes, [(flat, {"target": "nobody-here"})])
    script_text(kind, live.fakes, "There is no such agent.")
    done = codex_exec(live.gateway, f"{kind}-text", "Close agent nobody-here.", tmp_path,
                      searches=kind in SEARCHING_KINDS)
    assert done.returncode == 0, _explain(done)
    assert done.stdout.strip().endswith("There is no such agent."), _explain(done)
    sent = received(kind, live.fakes)
    assert flat in declared_tools(kind, sent) and replayed_calls(kind, sent) == [flat]
    assert "invalid agent id nobody-here" in str(sent), _explain(done)


def declared_tools(kind: str, sent: dict[str, Any]) -> list[str]:
    if kind == "openai":
        return [tool["function"]["name"] for tool in sent["tools"]]
    if kind == "anthropic":
        return [tool["name"] for tool in sent["tools"]]
    return [declared["name"] for tool in sent["tools"]
            for declared in tool.get("functionDeclarations", ())]


def replayed_calls(kind: str, sent: dict[str, Any]) -> list[str]:
    """The names of the calls in the conversation the upstream of `kind` was sent back."""
    if kind == "openai":
        return [call["function"]["name"] for message in sent["messages"]
                for call in message.get("tool_calls") or ()]
    if kind == "anthropic":
        return [block["name"] for message in sent["messages"]
                if isinstance(message["content"], list)
                for block in message["content"] if block["type"] == "tool_use"]
    return [part["functionCall"]["name"] for content in sent["contents"]
            for part in content["parts"] if "functionCall" in part]
