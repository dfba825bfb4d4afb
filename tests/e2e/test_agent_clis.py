"""Claude Code and Gemini CLI, unchanged, through a live gateway to fake upstreams of every
kind: a plain turn, and a turn where the CLI runs a tool (it reads a file in its working
directory) and the upstream answers from the result it received back.

The fakes script what the model says; the CLIs do the rest for real. The gateway's models all
think (`thinking=True`), as the models agent CLIs are pointed at do: both CLIs ask for thoughts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.contract.conftest import KINDS
from tests.contract.scenarios import received, script_text
from tests.e2e.agent_clis import (
    Workspace,
    outcome,
    readme_gemini_settings,
    run_claude,
    run_gemini,
)
from tests.e2e.fake_upstreams_live import FakesGateway, script_streamed_calls, serve_before_fakes
from tests.fakes import anthropic_upstream as anthropic

# Only the file holds it: neither the prompt nor the scripted call mentions it.
SECRET = "periwinkle-4471"
ANSWER = "The note says periwinkle."


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
         ) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "agent-clis", thinking=True)


@pytest.fixture(autouse=True)
def clean_scripts(live: FakesGateway) -> None:
    live.clear_scripts()


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    space = Workspace.under(tmp_path)
    (space.work / "note.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    return space


def claude(live: FakesGateway, space: Workspace, kind: str, prompt: str) -> str:
    done = run_claude(live.gateway, space, prompt, model=f"{kind}-text")
    assert done.returncode == 0, outcome(done)
    return done.stdout


def gemini(live: FakesGateway, space: Workspace, kind: str, prompt: str) -> str:
    settings = readme_gemini_settings("customAliases")
    done = run_gemini(live.gateway, space, prompt, model=f"{kind}-text", settings=settings)
    assert done.returncode == 0, outcome(done)
    return done.stdout


CLIS: dict[str, Callable[[FakesGateway, Workspace, str, str], str]] = {
    "claude": claude, "gemini": gemini}
# Each CLI's own file-reading tool and its argument naming the file.
READ_TOOL = {"claude": ("Read", "file_path"), "gemini": ("read_file", "file_path")}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cli", CLIS)
def test_a_plain_turn(live: FakesGateway, space: Workspace, cli: str, kind: str) -> None:
    script_text(kind, live.fakes, "Hello from the upstream, through the gateway.")
    stdout = CLIS[cli](live, space, kind, "Say hello")
    assert "Hello from the upstream, through the gateway." in stdout
    assert "Say hello" in str(received(kind, live.fakes))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cli", CLIS)
def test_a_tool_turn(live: FakesGateway, space: Workspace, cli: str, kind: str) -> None:
    tool, argument = READ_TOOL[cli]
    call = (tool, {argument: str(space.work / "note.txt")})
    if kind == "anthropic":  # thinking is on: Anthropic's answer opens with a signed thought
        live.fakes.anthropic.replies.append(anthropic.Reply(
            text=None, thinking="The file will tell.", stop_reason="tool_use",
            tool_calls=[{"name": call[0], "input": call[1]}]))
    else:
        script_streamed_calls(kind, live.fakes, [call])
    script_text(kind, live.fakes, ANSWER)
    stdout = CLIS[cli](live, space, kind, "What does note.txt say?")
    assert ANSWER in stdout
    results = tool_results(kind, received(kind, live.fakes))
    assert any(SECRET in result for result in results), results


def tool_results(kind: str, body: dict[str, Any]) -> list[str]:
    """The tool results in a request body, as text, read in the upstream's own dialect."""
    if kind == "openai":
        return [_text(m["content"]) for m in body["messages"] if m["role"] == "tool"]
    if kind == "anthropic":
        return [_text(block.get("content", "")) for m in body["messages"] if m["role"] == "user"
                and isinstance(m["content"], list)
                for block in m["content"] if block.get("type") == "tool_result"]
    return [orjson.dumps(part["functionResponse"]).decode() for c in body["contents"]
            for part in c.get("parts", []) if "functionResponse" in part]


def _text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(piece.get("text", "")) for piece in content)
