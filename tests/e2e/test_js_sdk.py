"""@google/genai from npm (Node) against the live gateway: tests/e2e/js/generate.mjs runs
generateContent, generateContentStream and one failing call, and prints what it saw as JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.genai_js import run_genai_js

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def seen(gateway: LiveGateway) -> dict[str, Any]:
    return run_genai_js("generate.mjs", gateway.base_url, gateway.key, MODEL)


def test_sdk_is_the_3_x_line(seen: dict[str, Any]) -> None:
    assert seen["sdkVersion"].split(".")[0] == "3"


def test_generate_content(seen: dict[str, Any]) -> None:
    generate = seen["generate"]
    assert generate["text"].strip()
    assert generate["finishReason"] in {"STOP", "MAX_TOKENS"}
    usage = generate["usage"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert 0 < usage["candidatesTokenCount"] <= 16


def test_generate_content_stream(seen: dict[str, Any]) -> None:
    chunks = seen["chunks"]
    assert len(chunks) > 1
    assert "".join(chunk["text"] for chunk in chunks).strip()
    assert all(chunk["finishReason"] is None for chunk in chunks[:-1])
    last = chunks[-1]
    assert last["finishReason"] in {"STOP", "MAX_TOKENS"}
    assert 0 < last["usage"]["candidatesTokenCount"] <= 16


def test_errors_reach_the_sdk_as_api_errors(seen: dict[str, Any]) -> None:
    error = seen["error"]
    assert error["name"] == "ApiError"
    assert error["status"] == 404
    body = orjson.loads(error["message"])
    assert body["error"]["status"] == "NOT_FOUND"
    assert body["error"]["code"] == 404
