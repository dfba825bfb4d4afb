"""Log probabilities asked for at either entrance come back to the caller, whole and streamed:
a Gemini caller's responseLogprobs through translation to an OpenAI-compatible upstream, and
an OpenAI caller's logprobs through pass-through."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from google.genai import types
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.api.bodies import GENERATE, SMOL, STREAM, text_body, with_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

TOKENS = [("Hel", -0.25), ("lo", -0.5), ("!", -1.25)]


@pytest.fixture(autouse=True)
def with_logprobs(upstream: FakeOpenAIUpstream) -> None:
    upstream.default = Reply(text="Hello!", logprobs=TOKENS)


def sse_data(body: bytes) -> list[bytes]:
    return [event.removeprefix(b"data: ") for event in body.replace(b"\r\n", b"\n").split(
        b"\n\n") if event]


async def test_a_gemini_answer_has_the_logprobs_it_asked_for(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json=with_config(responseLogprobs=True, logprobs=2))
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
    sdk = types.GenerateContentResponse._from_response(response=response.json(), kwargs={})
    assert sdk.candidates is not None
    candidate = sdk.candidates[0]
    assert candidate.avg_logprobs == pytest.approx(-2.0 / 3)
    result = candidate.logprobs_result
    assert result is not None and result.log_probability_sum == -2.0
    assert [(c.token, c.log_probability) for c in result.chosen_candidates or []] == TOKENS
    assert [[c.token for c in step.candidates or []] for step in result.top_candidates or []] == [
        ["Hel", "alt1"], ["lo", "alt1"], ["!", "alt1"]]


async def test_without_response_logprobs_a_gemini_answer_has_none(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json=text_body())
    assert "logprobs" not in upstream.requests[-1]
    candidate = response.json()["candidates"][0]
    assert "logprobsResult" not in candidate and "avgLogprobs" not in candidate


async def test_a_gemini_stream_carries_each_increments_logprobs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(f"{STREAM}?alt=sse", json=with_config(responseLogprobs=True))
    assert response.status_code == 200, response.text
    chunks = [types.GenerateContentResponse._from_response(response=orjson.loads(data),
                                                           kwargs={})
              for data in sse_data(response.content)]
    steps = [[(c.token, c.log_probability) for c in chunk.candidates[0].logprobs_result
              .chosen_candidates or []]
             for chunk in chunks if chunk.candidates and chunk.candidates[0].logprobs_result]
    assert steps == [[token] for token in TOKENS]
    assert "".join(chunk.text or "" for chunk in chunks) == "Hello!"


def openai_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"authorization": f"Bearer {client.headers['x-goog-api-key']}"}


async def test_an_openai_completion_has_the_logprobs_it_asked_for(
    client: httpx.AsyncClient,
) -> None:
    chat: dict[str, Any] = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}],
                            "logprobs": True, "top_logprobs": 2}
    response = await client.post("/v1/chat/completions", json=chat,
                                 headers=openai_headers(client))
    assert response.status_code == 200, response.text
    logprobs = ChatCompletion.model_validate_json(response.content).choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [(e.token, e.logprob, len(e.top_logprobs)) for e in logprobs.content] == [
        (token, value, 2) for token, value in TOKENS]


async def test_an_openai_stream_carries_each_deltas_logprobs(client: httpx.AsyncClient) -> None:
    chat: dict[str, Any] = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}],
                            "logprobs": True, "stream": True}
    response = await client.post("/v1/chat/completions", json=chat,
                                 headers=openai_headers(client))
    assert response.status_code == 200, response.text
    data = sse_data(response.content)
    assert data[-1] == b"[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(item) for item in data[:-1]]
    tokens = [(entry.token, entry.logprob) for chunk in chunks for choice in chunk.choices
              if choice.logprobs and choice.logprobs.content
              for entry in choice.logprobs.content]
    assert tokens == TOKENS
