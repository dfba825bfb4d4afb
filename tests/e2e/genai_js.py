"""Runs one of the @google/genai scripts in tests/e2e/js against a live gateway.

Each script reads BASE, KEY and MODEL from its environment and prints one JSON object of what
it saw. A missing Node or package is a failure, not a skip: scripts/test installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

JS_DIR = Path(__file__).resolve().parent / "js"


def run_genai_js(script: str, base_url: str, key: str, model: str, *,
                 timeout: float = 300) -> dict[str, Any]:
    if shutil.which("node") is None:
        pytest.fail("node is not installed (scripts/test installs it)")
    if not (JS_DIR / "node_modules" / "@google" / "genai").is_dir():
        pytest.fail("@google/genai is not installed: run `(cd tests/e2e/js && npm install)` "
                    "(scripts/test does)")
    done = subprocess.run(
        ["node", script], cwd=JS_DIR, capture_output=True, timeout=timeout, check=False,
        env={**os.environ, "BASE": base_url, "KEY": key, "MODEL": model})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    seen: dict[str, Any] = orjson.loads(done.stdout)
    return seen
