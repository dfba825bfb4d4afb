"""A prompt over its model's context window reaches each caller as its own dialect's
context-length error — Google's 400 INVALID_ARGUMENT "The input token count (N) exceeds …",
OpenAI's context_length_exceeded, Anthropic's "prompt is too long: N tokens > M maximum" —
whether the upstream said so in a structured field, said only "400", or the gateway's own
check found it before sending. N is the provider's exact count, never a guess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cometgate.providers.base import Provider
from tests.api.translated_gateway import TwoUpstreams, two_upstreams
from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.gemini_upstream import Reply as GeminiReply
from tests.fakes.gemini_upstream import google_error
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "window"  # on "worker": every dialect's request is translated; it counts tokens
PASSED = "window-passed"  # on "fake": an OpenAI caller's body is passed through
GEMINI = "window-gemini"  # on "gem": other dialects' requests are translated
CLAUDE = "window-claude"  # on "ant": other dialects' requests are translated
WINDOW = {MODEL: {"provider": "worker", "upstream_model": "worker-up",
                  "input_token_limit": 1000, "output_token_limit": 500},
          PASSED: {"provider": "fake", "upstream_model": "fake-up",
                   "input_token_limit": 1000, "output_token_limit": 500},
          GEMINI: {"provider": "gem", "upstream_model": "gemini-up",
                   "input_token_limit": 1000, "output_token_limit": 500},
          CLAUDE: {"provider": "ant", "upstream_model": "claude-up",
                   "input_token_limit": 1000, "output_token_limit": 500}}


@pytest.fixture
async def gateway(tmp_path: Path, fake_provider: Provider,
                  upstream: FakeOpenAIUpstream) -> AsyncIterator[TwoUpstreams]:
    async with two_upstreams(tmp_path, fake_provider, upstream, WINDOW) as opened:
        yield opened


# The fake's /tokenize counts one token per word. OVER and UNDER look small to the estimate
# (3 characters a token) but count over / under the window of 1000; LONG_* look long.
OVER, UNDER = "a " * 1500, "a " * 900
LONG_OVER, LONG_UNDER = "word " * 1500, "word " * 999


async def ask(gateway: TwoUpstreams, dialect: str, text: str = OVER, model: str = MODEL,
              **extra: Any) -> httpx.Response:
    if dialect == "gemini":
        return await gateway.http.post(
            f"/v1beta/models/{model}:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": text}]}]},
            headers={"x-goog-api-key": gateway.key})
    if dialect == "openai":
        return await gateway.http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
            headers={"authorization": f"Bearer {gateway.key}"})
    return await gateway.http.post(
        "/v1/messages",
        json={"model": model, "max_tokens": 64,
              "messages": [{"role": "user", "content": text}], **extra},
        headers={"x-api-key": gateway.key, "anthropic-version": "2023-06-01"})


def context_error(dialect: str, tokens: int | None) -> dict[str, Any]:
    if dialect == "gemini":
        counted = "" if tokens is None else f" ({tokens})"
        return {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": (
            f"The input token count{counted} exceeds the maximum number of tokens allowed "
            "(1000).")}}
    if dialect == "openai":
        counted = "" if tokens is None else (
            f" However, your messages resulted in {tokens} tokens.")
        return {"error": {"type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded", "message": (
                              f"This model's maximum context length is 1000 tokens.{counted} "
                              "Please reduce the length of the messages.")}}
    counted = "" if tokens is None else f"{tokens} tokens "
    return {"type": "error", "error": {"type": "invalid_request_error",
                                       "message": f"prompt is too long: {counted}> 1000 maximum"}}


def answer(response: httpx.Response) -> dict[str, Any]:
    """The error body; Anthropic's request_id (a fresh id each time) checked and set aside."""
    body: dict[str, Any] = response.json()
    if body.get("type") == "error":
        assert isinstance(body.pop("request_id"), str)
    return body


DIALECTS = ["gemini", "openai", "anthropic"]
CONTEXT_LENGTH = Reply(status=400, error_code="context_length_exceeded")
# vLLM's answer: a 400 whose only structured field is the status (its words say the rest).
STATUS_ONLY = Reply(status=400, error_type="BadRequestError")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("reply", [CONTEXT_LENGTH, STATUS_ONLY], ids=["coded", "status-only"])
async def test_an_upstreams_context_refusal_in_each_dialect(
    gateway: TwoUpstreams, dialect: str, reply: Reply
) -> None:
    gateway.openai.replies.append(reply)
    response = await ask(gateway, dialect)
    assert response.status_code == 400, response.text
    assert answer(response) == context_error(dialect, 1500)
    # Sent (the prompt looked small), refused, then counted to say by how much.
    assert gateway.openai.paths == ["/v1/chat/completions", "/tokenize"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_coded_refusal_the_count_does_not_confirm_names_no_count(
    gateway: TwoUpstreams, dialect: str
) -> None:
    # The upstream's real window is smaller than the configured limit: it is believed, and no
    # number that contradicts "too long" is given.
    gateway.openai.replies.append(CONTEXT_LENGTH)
    response = await ask(gateway, dialect, UNDER)
    assert response.status_code == 400
    assert answer(response) == context_error(dialect, None)


async def test_a_status_only_refusal_under_the_window_is_the_upstreams_own(
    gateway: TwoUpstreams,
) -> None:
    gateway.openai.replies.append(STATUS_ONLY)
    response = await ask(gateway, "anthropic", UNDER)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "fake failure 400"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_gateway_refuses_a_prompt_over_the_window_before_sending(
    gateway: TwoUpstreams, dialect: str
) -> None:
    response = await ask(gateway, dialect, LONG_OVER)  # may not fit: counted first
    assert response.status_code == 400
    assert answer(response) == context_error(dialect, 1500)
    assert gateway.openai.paths == ["/tokenize"]  # never sent for generation


async def test_a_long_prompt_that_fits_is_sent(gateway: TwoUpstreams) -> None:
    response = await ask(gateway, "openai", LONG_UNDER)
    assert response.status_code == 200, response.text
    assert gateway.openai.paths == ["/tokenize", "/v1/chat/completions"]


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
async def test_a_stream_is_refused_before_it_starts(gateway: TwoUpstreams, dialect: str) -> None:
    gateway.openai.replies.append(CONTEXT_LENGTH)
    response = await ask(gateway, dialect, stream=True)
    assert response.status_code == 400
    assert answer(response) == context_error(dialect, 1500)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_passed_through_status_only_refusal_over_the_window_is_openais(
    gateway: TwoUpstreams, stream: bool
) -> None:
    gateway.openai.replies.append(STATUS_ONLY)
    response = await ask(gateway, "openai", model=PASSED, stream=stream)
    assert response.status_code == 400
    assert answer(response) == context_error("openai", 1500)
    assert gateway.openai.paths == ["/v1/chat/completions", "/tokenize"]


async def test_a_passed_through_refusal_otherwise_is_the_upstreams_own(
    gateway: TwoUpstreams,
) -> None:
    gateway.openai.replies.extend([CONTEXT_LENGTH, STATUS_ONLY])
    coded = await ask(gateway, "openai", UNDER, model=PASSED)  # already OpenAI's own words
    under = await ask(gateway, "openai", UNDER, model=PASSED)  # some other fault
    assert coded.json() == {"error": {"message": "fake failure 400",
                                      "type": "invalid_request_error", "param": None,
                                      "code": "context_length_exceeded"}}
    assert under.json() == {"error": {"message": "fake failure 400", "type": "BadRequestError",
                                      "param": None, "code": None}}
    assert gateway.openai.paths == [
        "/v1/chat/completions", "/v1/chat/completions", "/tokenize"]


async def test_a_short_prompts_refusal_is_not_counted(gateway: TwoUpstreams) -> None:
    gateway.openai.replies.append(STATUS_ONLY)
    response = await ask(gateway, "gemini", "Hello")
    assert response.json()["error"]["message"] == "fake failure 400"
    assert gateway.openai.paths == ["/v1/chat/completions"]  # nothing counted


GEMINI_TOO_LONG = GeminiReply(status=400, error=google_error(
    400, "INVALID_ARGUMENT",
    "The input token count (1500) exceeds the maximum number of tokens allowed (1000)."))


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
async def test_geminis_status_only_refusal_reaches_other_callers_in_their_words(
    gateway: TwoUpstreams, dialect: str
) -> None:
    # Gemini says it only in words: the gateway counts with :countTokens (a token a word).
    gateway.gemini.replies.append(GEMINI_TOO_LONG)
    response = await ask(gateway, dialect, model=GEMINI)
    assert response.status_code == 400
    assert answer(response) == context_error(dialect, 1500)
    assert [seen.path.rsplit(":", 1)[1] for seen in gateway.gemini.requests] == [
        "generateContent", "countTokens"]


@pytest.mark.parametrize("dialect", ["gemini", "openai"])
async def test_anthropics_prompt_too_long_reaches_other_callers_in_their_words(
    gateway: TwoUpstreams, dialect: str
) -> None:
    # Anthropic's "prompt is too long" is an invalid_request_error like any other: the gateway
    # counts with count_tokens (a token a word) to know it.
    gateway.anthropic.replies.append(AnthropicReply(status=400))
    response = await ask(gateway, dialect, model=CLAUDE)
    assert response.status_code == 400
    assert answer(response) == context_error(dialect, 1500)
    assert len(gateway.anthropic.requests) == 2  # the generation, then the count
