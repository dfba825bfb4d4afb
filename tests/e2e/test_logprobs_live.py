"""Log probabilities from the real local model through a live gateway: google-genai's
responseLogprobs (translated to the worker's OpenAI dialect and back) and the openai SDK's
logprobs (forwarded as they are), whole and streamed.

The model's wording is never asserted: only that every generated token comes back once, with
a log probability ≤ 0 and the number of alternatives asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = pytest.mark.model

SHORT = 8  # max output tokens: a few tokens are all these checks need
TOP = 2
PROMPT = "Name a colour."


@pytest.fixture(scope="module")
def gemini(gateway: LiveGateway) -> Iterator[genai.Client]:
    options = types.HttpOptions(base_url=gateway.base_url, api_version="v1beta")
    with genai.Client(api_key=gateway.key, http_options=options) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def chat(gateway: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=gateway.key, base_url=gateway.base_url + "/v1",
                       max_retries=0) as sdk:
        yield sdk


def config() -> types.GenerateContentConfig:
    return types.GenerateContentConfig(temperature=0.0, seed=7, max_output_tokens=SHORT,
                                       response_logprobs=True, logprobs=TOP)


def chosen(candidate: types.Candidate) -> list[types.LogprobsResultCandidate]:
    assert candidate.logprobs_result is not None
    return candidate.logprobs_result.chosen_candidates or []


def test_a_gemini_answer_has_a_logprob_for_every_token(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model=MODEL, contents=PROMPT, config=config())
    assert response.candidates and response.usage_metadata
    candidate = response.candidates[0]
    tokens = chosen(candidate)
    assert len(tokens) == response.usage_metadata.candidates_token_count
    assert "".join(token.token or "" for token in tokens) == response.text
    values = [token.log_probability for token in tokens]
    assert all(value is not None and value <= 0 for value in values)
    assert candidate.avg_logprobs == pytest.approx(sum(v or 0.0 for v in values) / len(values))
    assert candidate.logprobs_result and candidate.logprobs_result.top_candidates
    for step in candidate.logprobs_result.top_candidates:
        assert step.candidates is not None and len(step.candidates) == TOP


def test_a_gemini_stream_has_the_same_tokens_as_the_answer(gemini: genai.Client) -> None:
    whole = gemini.models.generate_content(model=MODEL, contents=PROMPT, config=config())
    assert whole.candidates
    streamed = [token.token
                for chunk in gemini.models.generate_content_stream(
                    model=MODEL, contents=PROMPT, config=config())
                if chunk.candidates and chunk.candidates[0].logprobs_result
                for token in chosen(chunk.candidates[0])]
    assert streamed == [token.token for token in chosen(whole.candidates[0])]


def test_an_openai_completion_has_a_logprob_for_every_token(chat: openai.OpenAI) -> None:
    completion = chat.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=SHORT,
        temperature=0, seed=7, logprobs=True, top_logprobs=TOP)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content and completion.usage
    assert len(logprobs.content) == completion.usage.completion_tokens
    assert all(entry.logprob <= 0 and len(entry.top_logprobs) == TOP
               for entry in logprobs.content)
    streamed = [entry.token
                for chunk in chat.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": PROMPT}],
                    max_tokens=SHORT, temperature=0, seed=7, logprobs=True, top_logprobs=TOP,
                    stream=True)
                for choice in chunk.choices
                if choice.logprobs and choice.logprobs.content
                for entry in choice.logprobs.content]
    assert streamed == [entry.token for entry in logprobs.content]
