"""Embeddings through the app in two dialects, answered by the bundled local model: Gemini's
`:embedContent` / `:batchEmbedContents` and OpenAI's `/v1/embeddings`, each recorded once, and
the refusals that keep embedding and generation models apart."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cometgate.app import create_app
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord

CONFIG = """
routing: {retries: 0}
providers:
  embedder: {kind: local_embedding, threads: 2}
  fake: {kind: openai, base_url: "http://127.0.0.1:9/v1"}  # never reached
models:
  minilm: {task: embed, provider: embedder, input_token_limit: 256}
  chat: {provider: fake, input_token_limit: 1000, output_token_limit: 100}
"""
GEMINI = "/v1beta/models/minilm"


class Opened:
    def __init__(self, http: httpx.AsyncClient, app: Any, settings: Settings, key: str) -> None:
        self.http, self.app, self.settings, self.key = http, app, settings, key

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Opened]:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path, data_dir=tmp_path / "data", env={"HOME": str(tmp_path)})
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create("embeddings")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as http:
            yield Opened(http, app, settings, key)


def gemini_headers(gateway: Opened) -> dict[str, str]:
    return {"x-goog-api-key": gateway.key}


def openai_headers(gateway: Opened) -> dict[str, str]:
    return {"authorization": f"Bearer {gateway.key}"}


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_embed_content_gives_one_unit_vector_and_one_record(gateway: Opened) -> None:
    response = await gateway.http.post(
        f"{GEMINI}:embedContent", headers=gemini_headers(gateway),
        json={"content": {"parts": [{"text": "A cat sits on the mat."}]}})
    assert response.status_code == 200, response.text
    values = response.json()["embedding"]["values"]
    assert len(values) == 384 and abs(np.linalg.norm(values) - 1) < 1e-4
    [record] = await gateway.records()
    assert (record.dialect, record.model, record.status) == ("gemini", "minilm", 200)
    assert record.prompt_tokens == 7 and record.output_tokens == 0


async def test_batch_embed_contents_keeps_the_order_and_the_meaning(gateway: Opened) -> None:
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell today."]
    response = await gateway.http.post(
        f"{GEMINI}:batchEmbedContents", headers=gemini_headers(gateway),
        json={"requests": [{"model": "models/minilm", "content": {"parts": [{"text": t}]},
                            "outputDimensionality": 64} for t in texts]})
    assert response.status_code == 200, response.text
    cat, kitten, stocks = (e["values"] for e in response.json()["embeddings"])
    assert len(cat) == 64
    assert cosine(cat, kitten) > cosine(cat, stocks) + 0.2


async def test_openai_embeddings_in_float_and_base64_agree(gateway: Opened) -> None:
    body = {"model": "minilm", "input": ["hello world", "goodbye"]}
    floats = await gateway.http.post("/v1/embeddings", headers=openai_headers(gateway),
                                     json=body)
    packed = await gateway.http.post("/v1/embeddings", headers=openai_headers(gateway),
                                     json={**body, "encoding_format": "base64"})
    assert floats.status_code == packed.status_code == 200, packed.text
    answer = floats.json()
    assert answer["object"] == "list" and answer["model"] == "minilm"
    assert [item["index"] for item in answer["data"]] == [0, 1]
    assert answer["usage"]["prompt_tokens"] == answer["usage"]["total_tokens"] > 0
    decoded = np.frombuffer(base64.b64decode(packed.json()["data"][1]["embedding"]),
                            dtype="<f4")
    assert np.allclose(decoded, answer["data"][1]["embedding"], atol=1e-6)
    assert [r.dialect for r in await gateway.records()] == ["openai", "openai"]


async def test_an_embedding_model_does_not_generate(gateway: Opened) -> None:
    gemini = await gateway.http.post(
        f"{GEMINI}:generateContent", headers=gemini_headers(gateway),
        json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert gemini.status_code == 404 and "not supported for generateContent" in gemini.text
    openai = await gateway.http.post(
        "/v1/chat/completions", headers=openai_headers(gateway),
        json={"model": "minilm", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 400
    assert "does not generate content" in openai.json()["error"]["message"]


async def test_a_generation_model_does_not_embed(gateway: Opened) -> None:
    gemini = await gateway.http.post(
        "/v1beta/models/chat:embedContent", headers=gemini_headers(gateway),
        json={"content": {"parts": [{"text": "hi"}]}})
    assert gemini.status_code == 404 and "not supported for embedContent" in gemini.text
    openai = await gateway.http.post("/v1/embeddings", headers=openai_headers(gateway),
                                     json={"model": "chat", "input": "hi"})
    assert openai.status_code == 400 and "does not make embeddings" in openai.text


@pytest.mark.parametrize(("path", "body", "where"), [
    (f"{GEMINI}:embedContent", {"content": {"parts": [{"text": "x"}]}, "taskType": "NOPE"},
     "task_type"),
    (f"{GEMINI}:embedContent", {"content": {"parts": [{"text": "x"}]}, "title": "T"},
     "title"),
    (f"{GEMINI}:embedContent",
     {"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 1000}, "384"),
    ("/v1/embeddings", {"model": "minilm", "input": [[1, 2, 3]]}, "input"),
    ("/v1/embeddings", {"model": "minilm", "input": ""}, "input"),
    ("/v1/embeddings", {"model": "minilm", "input": "x", "encoding_format": "hex"},
     "encoding_format"),
])
async def test_bad_embedding_requests_are_400_in_the_callers_dialect(
    gateway: Opened, path: str, body: dict[str, Any], where: str
) -> None:
    headers = gemini_headers(gateway) if path.startswith("/v1beta") else openai_headers(gateway)
    response = await gateway.http.post(path, headers=headers, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert where in str(error)
    assert ("status" in error) == path.startswith("/v1beta")  # Google's envelope, or OpenAI's
