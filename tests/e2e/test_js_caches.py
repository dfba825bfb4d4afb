"""@google/genai's `ai.caches` from Node against the live gateway on the local model:
tests/e2e/js/caches.mjs creates a cache, generates with it twice, reads, renews, lists and
deletes it, and prints what it saw as JSON."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import MODEL, LiveGateway

JS_DIR = Path(__file__).resolve().parent / "js"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


@pytest.fixture(scope="module")
def seen(gateway: LiveGateway) -> dict[str, Any]:
    if not (JS_DIR / "node_modules" / "@google" / "genai").is_dir():
        pytest.fail("@google/genai is not installed: run `(cd tests/e2e/js && npm install)` "
                    "(scripts/test does)")
    done = subprocess.run(
        ["node", "caches.mjs"], cwd=JS_DIR, capture_output=True, timeout=300, check=False,
        env={**os.environ, "BASE": gateway.base_url, "KEY": gateway.key, "MODEL": MODEL})
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def test_the_cache_as_the_sdk_reads_it(seen: dict[str, Any]) -> None:
    cache = seen["cache"]
    assert cache["name"].startswith("cachedContents/")
    assert (cache["model"], cache["displayName"]) == (f"models/{MODEL}", "handbook")
    assert cache["usageMetadata"]["totalTokenCount"] > 0
    assert seen["got"]["name"] == cache["name"]
    assert cache["name"] in seen["listed"]
    renewed = datetime.fromisoformat(seen["updated"]["expireTime"])
    assert renewed > datetime.fromisoformat(cache["expireTime"])


def test_generations_with_the_cache_report_what_llama_cpp_reused(seen: dict[str, Any]) -> None:
    first, second = seen["answers"]
    assert 0 < first["usage"]["candidatesTokenCount"] <= 4
    usage = second["usage"]
    served = usage["cachedContentTokenCount"]
    assert seen["cache"]["usageMetadata"]["totalTokenCount"] - 8 <= served
    assert served < usage["promptTokenCount"]


def test_a_deleted_cache_is_gone(seen: dict[str, Any]) -> None:
    gone = seen["afterDelete"]
    assert gone["status"] == 403
    assert orjson.loads(gone["message"])["error"]["status"] == "PERMISSION_DENIED"
