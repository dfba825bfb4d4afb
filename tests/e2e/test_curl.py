"""Raw HTTP with the real `curl` binary: the README's two commands run verbatim through bash, then
the other ways a REST client may address and authenticate a request.

The README commands set no maxOutputTokens, so they run against the small-context gateway, where
every generation ends within 128 tokens of context.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed"),
]

README = Path(__file__).resolve().parents[2] / "README.md"
README_ORIGIN = "http://127.0.0.1:8080"
SMALL_BODY = ('{"contents":[{"parts":[{"text":"Say hi."}]}],'
              '"generationConfig":{"maxOutputTokens":6}}')
# One SSE event exactly as the server frames it; the whole body must be a sequence of these.
SSE_EVENT = re.compile(rb"data: (\{[^\r\n]*\})\r\n\r\n")


def readme_curl_commands() -> list[str]:
    """The curl commands of the README's ```bash block that holds them, continuation lines
    joined by bash itself (the text is handed to bash unchanged)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    block = next(b for b in blocks if b.lstrip().startswith("curl "))
    commands: list[str] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("curl "):
            commands.append(line)
        elif commands:
            commands[-1] += line
    assert len(commands) == 2, commands
    return commands


def run_bash(command: str, gateway: LiveGateway, home: Path) -> tuple[int, bytes]:
    """Runs a README command through bash with only the origin substituted and KEY in the
    environment. A .curlrc (read by curl, not part of the command) writes the status to stderr."""
    (home / ".curlrc").write_text('silent\nshow-error\nwrite-out = "%{stderr}%{http_code}"\n')
    command = command.replace(README_ORIGIN, gateway.base_url)
    done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=180, check=False,
                          env={**os.environ, "KEY": gateway.key, "CURL_HOME": str(home)})
    assert done.returncode == 0, (done.returncode, done.stderr, done.stdout[-2000:])
    return int(done.stderr.decode()), done.stdout


def curl(url: str, *args: str, body: str | None = SMALL_BODY) -> tuple[int, dict[str, str], bytes]:
    """Runs curl; returns (status, lower-cased headers, body)."""
    argv = ["curl", "--silent", "--show-error", "--include", url, *args]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-raw", body]
    done = subprocess.run(argv, capture_output=True, timeout=120, check=True)
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(": ", 1) for line in header_lines)
    headers = {name.lower(): value for name, value in pairs}
    return int(status_line.split()[1]), headers, payload


def sse_events(body: bytes) -> list[dict[str, Any]]:
    """Parses an SSE body, failing on any byte that is not part of a `data: {...}` event."""
    events = [match for match in SSE_EVENT.finditer(body)]
    assert events, body[:500]
    assert b"".join(m.group(0) for m in events) == body, body[-500:]
    return [orjson.loads(m.group(1)) for m in events]


def assert_generate_shape(response: dict[str, Any]) -> None:
    assert list(response)[:1] == ["candidates"]
    (candidate,) = response["candidates"]
    assert candidate["content"]["role"] == "model"
    assert "".join(p["text"] for p in candidate["content"]["parts"]).strip()
    assert candidate["finishReason"] in {"STOP", "MAX_TOKENS"}
    usage = response["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert response["modelVersion"] == MODEL


def test_readme_generate_content_verbatim(
    small_context_gateway: LiveGateway, tmp_path: Path
) -> None:
    status, body = run_bash(readme_curl_commands()[0], small_context_gateway, tmp_path)
    assert status == 200, body
    assert_generate_shape(orjson.loads(body))


def test_readme_stream_verbatim(small_context_gateway: LiveGateway, tmp_path: Path) -> None:
    status, body = run_bash(readme_curl_commands()[1], small_context_gateway, tmp_path)
    assert status == 200, body
    events = sse_events(body)
    assert b"[DONE]" not in orjson.dumps(events)
    # The closing event may carry only the finish reason and usage, with no parts.
    parts = [p for e in events for p in e["candidates"][0]["content"].get("parts", [])]
    text = "".join(p["text"] for p in parts)
    assert text.strip()
    last = events[-1]
    assert last["candidates"][0]["finishReason"] in {"STOP", "MAX_TOKENS"}
    assert last["usageMetadata"]["candidatesTokenCount"] > 0
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])


def generate_url(gateway: LiveGateway, prefix: str = "/v1beta", model: str = MODEL) -> str:
    return f"{gateway.base_url}{prefix}/models/{model}:generateContent"


@pytest.mark.parametrize("how", ["query", "bearer", "x-goog-api-key"])
def test_each_way_of_passing_the_key(gateway: LiveGateway, how: str) -> None:
    url, args = generate_url(gateway), []
    if how == "query":
        url += f"?key={gateway.key}"
    elif how == "bearer":
        args = ["-H", f"Authorization: Bearer {gateway.key}"]
    else:
        args = ["-H", f"x-goog-api-key: {gateway.key}"]
    status, headers, body = curl(url, *args)
    assert status == 200, body
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert headers["x-request-id"]
    assert_generate_shape(orjson.loads(body))


@pytest.mark.parametrize("prefix", ["/v1", ""])
@pytest.mark.parametrize("model", [MODEL, f"models/{MODEL}"])
def test_versions_and_model_forms(gateway: LiveGateway, prefix: str, model: str) -> None:
    url = f"{gateway.base_url}{prefix}/models/{model}:generateContent"
    if model.startswith("models/"):
        url = f"{gateway.base_url}{prefix}/{model}:generateContent"
    status, _, body = curl(url, "-H", f"x-goog-api-key: {gateway.key}")
    assert status == 200, body
    assert_generate_shape(orjson.loads(body))


@pytest.mark.parametrize("alt", ["", "?alt=json"])
def test_stream_without_sse_is_one_json_array(gateway: LiveGateway, alt: str) -> None:
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:streamGenerateContent{alt}"
    status, headers, body = curl(url, "-H", f"x-goog-api-key: {gateway.key}")
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    chunks = orjson.loads(body)
    assert isinstance(chunks, list) and len(chunks) >= 1
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 6


def test_sse_stream_framing(gateway: LiveGateway) -> None:
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    status, headers, body = curl(url, "-H", f"x-goog-api-key: {gateway.key}", "--no-buffer")
    assert status == 200, body
    assert headers["content-type"].startswith("text/event-stream")
    events = sse_events(body)
    assert len(events) >= 2
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 6


def test_error_before_a_stream_is_plain_json(gateway: LiveGateway) -> None:
    url = f"{gateway.base_url}/v1beta/models/no-such-model:streamGenerateContent?alt=sse"
    status, headers, body = curl(url, "-H", f"x-goog-api-key: {gateway.key}")
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(body)["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND"


def test_count_tokens_and_models_over_curl(gateway: LiveGateway) -> None:
    key = ["-H", f"x-goog-api-key: {gateway.key}"]
    status, _, body = curl(f"{gateway.base_url}/v1beta/models/{MODEL}:countTokens", *key,
                           body='{"contents":[{"parts":[{"text":"Say hi."}]}]}')
    assert status == 200 and orjson.loads(body)["totalTokens"] > 0
    status, _, body = curl(f"{gateway.base_url}/v1/models?pageSize=1", *key, body=None)
    assert status == 200
    assert [m["name"] for m in orjson.loads(body)["models"]] == [f"models/{MODEL}"]
