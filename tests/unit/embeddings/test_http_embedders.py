"""GeminiEmbedder and OpenAIEmbedder against in-process upstreams on 127.0.0.1 that speak the
real wire formats: bodies, paths, credentials, batching, and every failure classified."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from tests.contract.upstreams import served
from tests.unit.embeddings.embedding_upstreams import (
    FakeEmbeddingUpstreams,
    google_error,
    openai_error,
    vector_for,
)

from cometgate.canonical import EmbedInput, EmbedRequest
from cometgate.errors import FailureClass, UpstreamError, UpstreamUnavailable
from cometgate.providers.base import Target
from cometgate.providers.embedding import Embeds, GeminiEmbedder, OpenAIEmbedder
from cometgate.providers.timeouts import Timeouts

FAST = Timeouts(connect=2.0, first_byte=5.0, idle=5.0, total=10.0)


class Upstreams:
    def __init__(self, fake: FakeEmbeddingUpstreams, url: str) -> None:
        self.fake = fake
        self.url = url

    def gemini(self, api_key: str | None = "gw-key") -> GeminiEmbedder:
        return GeminiEmbedder(self.url, api_key, FAST)

    def openai(self, api_key: str | None = "sk-gw") -> OpenAIEmbedder:
        return OpenAIEmbedder(f"{self.url}/v1", api_key, FAST)


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    fake = FakeEmbeddingUpstreams()
    async with served(fake.app) as (url,):
        yield Upstreams(fake, url)


def request(*texts: str, task_type: str | None = None,
            output_dimensionality: int | None = None) -> EmbedRequest:
    return EmbedRequest("alias", tuple(EmbedInput(text) for text in texts), task_type,
                        output_dimensionality)


def target(model: str, credential: str | None = None) -> Target:
    return Target(upstream_model=model, model_version="alias", credential=credential)


def test_both_embedders_have_the_capability() -> None:
    assert isinstance(GeminiEmbedder("http://127.0.0.1:9", None, FAST), Embeds)
    assert isinstance(OpenAIEmbedder("http://127.0.0.1:9/v1", None, FAST), Embeds)
    assert not isinstance(object(), Embeds)


# --- Gemini ---------------------------------------------------------------------------------


async def test_gemini_batch_call(upstreams: Upstreams) -> None:
    embedder = upstreams.gemini()
    try:
        answer = await embedder.embed(
            request("hello world", "bye", task_type="RETRIEVAL_QUERY", output_dimensionality=3),
            target("gemini-embedding-001"))
    finally:
        await embedder.aclose()
    assert answer.vectors == (tuple(vector_for("hello world")), tuple(vector_for("bye")))
    assert answer.prompt_tokens == len("hello world") // 3 + 1 + len("bye") // 3 + 1
    seen = upstreams.fake.seen[0]
    assert seen.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert seen.headers["x-goog-api-key"] == "gw-key"
    assert "authorization" not in seen.headers
    assert seen.body["requests"][1] == {
        "model": "models/gemini-embedding-001", "content": {"parts": [{"text": "bye"}]},
        "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 3}


async def test_gemini_reported_tokens_win_and_the_targets_key_is_used(
    upstreams: Upstreams,
) -> None:
    upstreams.fake.gemini_usage = True
    embedder = upstreams.gemini()
    try:
        answer = await embedder.embed(request("one two three", "four"),
                                      target("models/e", credential="per-target"))
    finally:
        await embedder.aclose()
    assert answer.prompt_tokens == 4
    assert upstreams.fake.seen[0].headers["x-goog-api-key"] == "per-target"
    assert upstreams.fake.seen[0].path == "/v1beta/models/e:batchEmbedContents"


async def test_gemini_splits_more_than_100_inputs_and_keeps_their_order(
    upstreams: Upstreams,
) -> None:
    texts = [f"text number {i}" + "!" * i for i in range(250)]
    embedder = upstreams.gemini()
    try:
        answer = await embedder.embed(request(*texts), target("e"))
    finally:
        await embedder.aclose()
    assert [len(seen.body["requests"]) for seen in upstreams.fake.seen] == [100, 100, 50]
    assert answer.vectors == tuple(tuple(vector_for(t)) for t in texts)


async def test_gemini_failures_are_classified(upstreams: Upstreams) -> None:
    upstreams.fake.errors = [
        google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]),
        google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com"}]),
        google_error(400, "INVALID_ARGUMENT", "* EmbedContentRequest.title: bad"),
        google_error(503, "UNAVAILABLE", "The model is overloaded."),
    ]
    embedder = upstreams.gemini()
    failures = []
    try:
        for _ in range(4):
            with pytest.raises(UpstreamError) as caught:
                await embedder.embed(request("x"), target("e"))
            failures.append(caught.value)
    finally:
        await embedder.aclose()
    assert [f.failure_class for f in failures] == [
        FailureClass.RATE_LIMITED, FailureClass.CREDENTIAL, FailureClass.CALLER_FAULT,
        FailureClass.TRANSIENT]
    assert failures[0].retry_after == 7.0
    assert failures[2].native_body is not None  # a Gemini caller gets Google's own answer


async def test_gemini_answer_missing_a_vector_is_an_upstream_error(upstreams: Upstreams) -> None:
    upstreams.fake.short_answer = True
    embedder = upstreams.gemini()
    try:
        with pytest.raises(UpstreamError) as caught:
            await embedder.embed(request("a", "b"), target("e"))
    finally:
        await embedder.aclose()
    assert caught.value.http_status == 502
    assert "1 embeddings for 2 inputs" in caught.value.message


# --- OpenAI ---------------------------------------------------------------------------------


async def test_openai_call(upstreams: Upstreams) -> None:
    embedder = upstreams.openai()
    try:
        answer = await embedder.embed(request("hello world", "bye", output_dimensionality=3),
                                      target("text-embedding-3-small"))
    finally:
        await embedder.aclose()
    assert answer.vectors == (tuple(vector_for("hello world")), tuple(vector_for("bye")))
    assert answer.prompt_tokens == 3
    seen = upstreams.fake.seen[0]
    assert seen.path == "/v1/embeddings"
    assert seen.headers["authorization"] == "Bearer sk-gw"
    assert seen.body == {"model": "text-embedding-3-small", "input": ["hello world", "bye"],
                         "encoding_format": "float", "dimensions": 3}


async def test_openai_without_a_key_sends_no_authorization(upstreams: Upstreams) -> None:
    embedder = upstreams.openai(api_key=None)
    try:
        await embedder.embed(request("x"), target("m"))
    finally:
        await embedder.aclose()
    assert "authorization" not in upstreams.fake.seen[0].headers


async def test_openai_failures_are_classified(upstreams: Upstreams) -> None:
    upstreams.fake.errors = [
        openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded",
                     headers={"retry-after-ms": "1500"}),
        openai_error(401, "Incorrect API key provided.", "invalid_request_error",
                     "invalid_api_key"),
        openai_error(400, "This model's maximum context length is 8192 tokens",
                     "invalid_request_error"),
        openai_error(429, "You exceeded your current quota", "insufficient_quota",
                     "insufficient_quota"),
        openai_error(500, "The server had an error", "server_error"),
    ]
    embedder = upstreams.openai()
    failures = []
    try:
        for _ in range(5):
            with pytest.raises(UpstreamError) as caught:
                await embedder.embed(request("x"), target("m"))
            failures.append(caught.value)
    finally:
        await embedder.aclose()
    assert [f.failure_class for f in failures] == [
        FailureClass.RATE_LIMITED, FailureClass.CREDENTIAL, FailureClass.CALLER_FAULT,
        FailureClass.QUOTA, FailureClass.TRANSIENT]
    assert failures[0].retry_after == 1.5
    assert "maximum context length" in failures[2].message


async def test_an_unreachable_upstream_is_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    embedder = OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "k", FAST)
    try:
        with pytest.raises(UpstreamUnavailable):
            await embedder.embed(request("x"), target("m"))
    finally:
        await embedder.aclose()
