"""@google/genai's `ai.caches` from Node against the live gateway on the local model:
tests/e2e/js/caches.mjs creates a cache, generates with it twice, reads, renews, lists and
deletes it, and prints what it saw as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.genai_js import run_genai_js

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def seen(gateway: LiveGateway) -> dict[str, Any]:
    return run_genai_js("caches.mjs", gateway.base_url, gateway.key, MODEL)


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
