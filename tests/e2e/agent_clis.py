"""Claude Code and Gemini CLI — the real ones, installed from npm under tests/e2e/js — run
headless (`-p`) against a live gateway, each in a home and a working directory of its own.

The environment holds nothing of this process's: PATH, the throwaway HOME and TMPDIR, and
what the README's "Agent CLIs" section gives for that CLI, with the gateway's address and key
put in. Every run is bounded by RUN_SECONDS. A missing CLI fails the test: `scripts/test`
installs both with `npm install`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import LiveGateway

JS_BIN = Path(__file__).resolve().parent / "js" / "node_modules" / ".bin"
README = Path(__file__).resolve().parents[2] / "README.md"
RUN_SECONDS = 60.0
# How the README writes the gateway's address and key in its examples.
README_BASE_URL = "http://127.0.0.1:8080"
README_KEY = "$KEY"


@dataclass(frozen=True)
class Workspace:
    """A CLI's HOME and the directory it works in (its cwd, inside HOME)."""

    home: Path
    work: Path

    @classmethod
    def under(cls, root: Path) -> Workspace:
        work = root / "project"
        work.mkdir(parents=True)
        return cls(root, work)


def binary(name: str) -> Path:
    path = JS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `(cd tests/e2e/js && npm install)` "
                    "(scripts/test does)")
    return path


def readme_block(language: str, marker: str) -> str:
    """The README's first ```language block that contains `marker`."""
    text = README.read_text(encoding="utf-8")
    for block in re.findall(rf"```{language}\n(.*?)```", text, re.S):
        if marker in block:
            return str(block)
    raise AssertionError(f"the README has no {language} block containing {marker!r}")


def readme_exports(marker: str, gateway: LiveGateway) -> dict[str, str]:
    """The `export NAME=value` lines of the README's bash block that contains `marker`, with
    the README's address and key replaced by the live gateway's."""
    found: dict[str, str] = {}
    for line in readme_block("bash", marker).splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            found[name] = (value.replace(README_BASE_URL, gateway.base_url)
                           .replace(README_KEY, gateway.key))
    assert found, f"the README's block with {marker!r} exports nothing"
    return found


def readme_gemini_settings(marker: str) -> dict[str, Any]:
    """The README's ~/.gemini/settings.json block that contains `marker`."""
    settings: dict[str, Any] = orjson.loads(readme_block("json", marker))
    return settings


def _base_env(space: Workspace) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(space.home),
            "TMPDIR": str(space.home), "LANG": "C.UTF-8"}


def run(argv: list[str], env: dict[str, str], space: Workspace, seconds: float
        ) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=space.work, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=seconds, check=False)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) \
            else (expired.stdout or "")
        pytest.fail(f"{argv[0]} did not finish within {seconds:g}s; stdout so far:\n{out}")


def run_claude(gateway: LiveGateway, space: Workspace, prompt: str, *,
               model: str, extra_env: dict[str, str] | None = None,
               args: tuple[str, ...] = (), seconds: float = RUN_SECONDS,
               ) -> subprocess.CompletedProcess[str]:
    """`claude -p PROMPT ARGS` with the README's environment, `model` as ANTHROPIC_MODEL and
    ANTHROPIC_DEFAULT_HAIKU_MODEL (the README names the bundled model there), and
    `extra_env` on top. The prompt comes first: `--tools` takes every word after it."""
    env = {**_base_env(space), **readme_exports("ANTHROPIC_BASE_URL", gateway),
           "ANTHROPIC_MODEL": model, "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
           **(extra_env or {})}
    return run([str(binary("claude")), "-p", prompt, *args], env, space, seconds)


def run_gemini(gateway: LiveGateway, space: Workspace, prompt: str, *, model: str,
               settings: dict[str, Any], seconds: float = RUN_SECONDS,
               ) -> subprocess.CompletedProcess[str]:
    """`gemini -p PROMPT -m MODEL` with the README's environment and `settings` as
    ~/.gemini/settings.json."""
    (space.home / ".gemini").mkdir(exist_ok=True)
    (space.home / ".gemini" / "settings.json").write_bytes(orjson.dumps(settings))
    env = {**_base_env(space), **readme_exports("GOOGLE_GEMINI_BASE_URL", gateway)}
    return run([str(binary("gemini")), "-p", prompt, "-m", model], env, space, seconds)


def outcome(done: subprocess.CompletedProcess[str]) -> str:
    """What a failed run said, for an assertion message."""
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
