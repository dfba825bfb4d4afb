"""google-genai `embed_content` and the openai SDK's `embeddings.create` against a live gateway
on its embedded defaults, answered by the bundled all-MiniLM-L6-v2: the two dialects give the
same vectors for the same text."""

from __future__ import annotations

import numpy as np
import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.conftest import LiveGateway

MODEL = "all-minilm-l6-v2"
TEXTS = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell today."]


def gemini(gateway: LiveGateway) -> genai.Client:
    return genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
        base_url=gateway.base_url, api_version="v1beta", timeout=30_000))


def openai_client(gateway: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gateway.key, base_url=f"{gateway.base_url}/v1", max_retries=0)


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_google_genai_embeds_one_and_many(gateway: LiveGateway) -> None:
    client = gemini(gateway)
    one = client.models.embed_content(model=MODEL, contents=TEXTS[0])
    assert one.embeddings and len(one.embeddings[0].values or []) == 384
    many = client.models.embed_content(
        model=MODEL, contents=TEXTS,
        config=types.EmbedContentConfig(output_dimensionality=128, task_type="CLUSTERING"))
    vectors = [e.values or [] for e in many.embeddings or []]
    assert [len(v) for v in vectors] == [128, 128, 128]
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


def test_openai_sdk_embeds_and_agrees_with_gemini(gateway: LiveGateway) -> None:
    answer = openai_client(gateway).embeddings.create(model=MODEL, input=TEXTS)
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert answer.usage.prompt_tokens > 0 and answer.model == MODEL
    client = gemini(gateway)  # held: a collected client closes its connections
    google = client.models.embed_content(model=MODEL, contents=TEXTS[1])
    assert google.embeddings
    assert cosine(answer.data[1].embedding, google.embeddings[0].values or []) > 0.9999


def test_openai_sdk_dimensions_and_float_format(gateway: LiveGateway) -> None:
    answer = openai_client(gateway).embeddings.create(
        model=MODEL, input="hello", dimensions=32, encoding_format="float")
    vector = answer.data[0].embedding
    assert len(vector) == 32 and abs(np.linalg.norm(vector) - 1) < 1e-4


def test_refusals_reach_each_sdk_as_its_own_error(gateway: LiveGateway) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client(gateway).embeddings.create(model=MODEL, input="x", dimensions=4096)
    with pytest.raises(openai.NotFoundError):
        openai_client(gateway).embeddings.create(model="no-such-model", input="x")
    client = gemini(gateway)
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.embed_content(
            model=MODEL, contents="x",
            config=types.EmbedContentConfig(task_type="NOT_A_TASK"))
    assert caught.value.code == 400
