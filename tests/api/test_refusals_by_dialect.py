"""Every refusal a model's capability check can make, in each caller dialect's own envelope and
words: Google's for Gemini callers, OpenAI's (param, code) for OpenAI callers, Anthropic's
(field path first) for Anthropic callers. Where a dialect's request cannot reach a refusal (its
effort is met by the nearest level or budget instead), the table says so and the request is
answered. Nothing refused reaches an upstream.

The gateway checks a request it translates; one it passes through (a caller of the upstream's
own dialect) is the upstream's to judge. So each model has a twin of the same capabilities on
the other upstream: Gemini and Anthropic callers reach the OpenAI-compatible fake, OpenAI
callers the Gemini fake ("<model>-g")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cometgate.providers.base import Provider
from tests.api.bodies import PNG_BASE64
from tests.api.translated_gateway import TwoUpstreams, two_upstreams
from tests.fakes.openai_upstream import FakeOpenAIUpstream

CAPABILITIES: dict[str, dict[str, Any]] = {
    "text-only": {"input_token_limit": 1000, "output_token_limit": 8192},
    "budget-only": {"input_token_limit": 1000, "output_token_limit": 500, "thinking": {
        "style": "budget", "budget_min": 128, "budget_max": 24576, "can_disable": False}},
    "two-levels": {"input_token_limit": 1000, "output_token_limit": 500,
                   "thinking": {"style": "levels", "levels": ["LOW", "HIGH"]}},
    "narrow-thinker": {"input_token_limit": 1000, "output_token_limit": 100000,
                       "thinking": {"style": "budget", "budget_min": 1024, "budget_max": 2048}},
    "cool-model": {"input_token_limit": 1000, "output_token_limit": 1000,
                   "max_temperature": 0.5},
}
TWINS = {**{name: {"provider": "fake", **spec} for name, spec in CAPABILITIES.items()},
         **{f"{name}-g": {"provider": "gem", "upstream_model": "gemini-up", **spec}
            for name, spec in CAPABILITIES.items()}}
SMOL = "text-only"


@dataclass
class Dialects:
    gateway: TwoUpstreams

    async def gemini(self, model: str, **body: Any) -> httpx.Response:
        contents = body.pop("contents", [{"role": "user", "parts": [{"text": "Hello"}]}])
        return await self.gateway.http.post(f"/v1beta/models/{model}:generateContent",
                                            json={"contents": contents, **body},
                                            headers={"x-goog-api-key": self.gateway.key})

    async def openai(self, model: str, **body: Any) -> httpx.Response:
        messages = body.pop("messages", [{"role": "user", "content": "Hello"}])
        return await self.gateway.http.post(
            "/v1/chat/completions", json={"model": f"{model}-g", "messages": messages, **body},
            headers={"authorization": f"Bearer {self.gateway.key}"})

    async def anthropic(self, model: str, **body: Any) -> httpx.Response:
        fields = {"model": model, "max_tokens": 64,
                  "messages": [{"role": "user", "content": "Hello"}], **body}
        return await self.gateway.http.post("/v1/messages", json=fields, headers={
            "x-api-key": self.gateway.key, "anthropic-version": "2023-06-01"})

    def upstream_requests(self) -> int:
        return len(self.gateway.openai.requests) + len(self.gateway.gemini.requests)


@pytest.fixture
async def dialects(tmp_path: Path, fake_provider: Provider,
                   upstream: FakeOpenAIUpstream) -> AsyncIterator[Dialects]:
    async with two_upstreams(tmp_path, fake_provider, upstream, TWINS) as gateway:
        yield Dialects(gateway)


ANSWERED = None  # the cell's request is carried (the dialect's own mapping), not refused

# refusal → dialect → (model, request fields, expected error)
# expected error: Gemini message | OpenAI (message, param, code) | Anthropic message
IMAGE_PART = {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}}
OPENAI_IMAGE = [{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}}]}]
ANTHROPIC_IMAGE = [{"role": "user", "content": [
    {"type": "text", "text": "What is this?"},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                 "data": PNG_BASE64}}]}]

TABLE: dict[str, dict[str, tuple[str, dict[str, Any], Any]]] = {
    "thinking-on-a-model-without-it": {
        "gemini": (SMOL, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}},
                   f"Thinking is not enabled for models/{SMOL}"),
        "openai": (SMOL, {"reasoning_effort": "low"},
                   ("Unsupported parameter: 'reasoning_effort' is not supported with this "
                    "model.", "reasoning_effort", "unsupported_parameter")),
        # Adaptive thinking lets the model decide; one that cannot think answers without
        # (named in x-cometgate-dropped; a strict key hears the refusal).
        "anthropic": (SMOL, {"thinking": {"type": "adaptive"},
                             "output_config": {"effort": "high"}}, ANSWERED),
    },
    # Left to the model (a dynamic budget, an effort, adaptive): only Anthropic's words change.
    "dynamic-thinking-on-a-model-without-it": {
        "gemini": (SMOL, {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}},
                   f"Thinking is not enabled for models/{SMOL}"),
        "openai": (SMOL, {"reasoning_effort": "high"},
                   ("Unsupported parameter: 'reasoning_effort' is not supported with this "
                    "model.", "reasoning_effort", "unsupported_parameter")),
        "anthropic": (SMOL, {"thinking": {"type": "adaptive"}}, ANSWERED),
    },
    "a-fixed-budget-on-a-model-without-thinking": {
        "gemini": (SMOL, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 2048}}},
                   f"Thinking is not enabled for models/{SMOL}"),
        "anthropic": (SMOL, {"max_tokens": 4096,
                             "thinking": {"type": "enabled", "budget_tokens": 2048}},
                      f"thinking: '{SMOL}' does not support thinking"),
    },
    "level-on-a-budget-model": {
        "gemini": ("budget-only",
                   {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}},
                   "Thinking level is not supported for this model."),
        "openai": ("budget-only", {"reasoning_effort": "low"}, ANSWERED),
        "anthropic": ("budget-only", {"thinking": {"type": "adaptive"},
                                         "output_config": {"effort": "low"}}, ANSWERED),
    },
    "level-the-model-does-not-offer": {
        "gemini": ("two-levels",
                   {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MEDIUM"}}},
                   "Thinking level MEDIUM is not supported for this model."),
        "openai": ("two-levels", {"reasoning_effort": "medium"},
                   ("Unsupported value: 'reasoning_effort' does not support 'medium' with this "
                    "model. Supported values are: 'low', 'high'.", "reasoning_effort",
                    "unsupported_value")),
        "anthropic": ("two-levels", {"thinking": {"type": "adaptive"},
                                        "output_config": {"effort": "medium"}}, ANSWERED),
    },
    "thinking-off-on-a-model-that-must-think": {
        "gemini": ("budget-only",
                   {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}},
                   "Budget 0 is invalid. This model only works in thinking mode."),
        "openai": ("budget-only", {"reasoning_effort": "none"},
                   ("Unsupported value: 'reasoning_effort' does not support 'none' with this "
                    "model.", "reasoning_effort", "unsupported_value")),
        "anthropic": ("budget-only", {"thinking": {"type": "disabled"}},
                      "thinking.type: 'budget-only' only works with thinking enabled"),
    },
    "budget-out-of-range": {
        "gemini": ("narrow-thinker",
                   {"generationConfig": {"thinkingConfig": {"thinkingBudget": 4096}}},
                   "The thinking budget (4096) is invalid. Valid budgets for "
                   "models/narrow-thinker are 1024 to 2048, 0 (off) or -1."),
        # An effort has no budget of its own: it is clamped into the model's range.
        "openai": ("narrow-thinker", {"reasoning_effort": "high"}, ANSWERED),
        "anthropic": ("narrow-thinker", {"max_tokens": 8000, "thinking": {
            "type": "enabled", "budget_tokens": 4096}},
            "thinking.budget_tokens: Input should be between 1024 and 2048 for "
            "'narrow-thinker'"),
    },
    "media-the-model-does-not-accept": {
        "gemini": (SMOL, {"contents": [{"role": "user", "parts": [
            {"text": "What is this?"}, IMAGE_PART]}]},
            f"Unsupported MIME type: image/png. models/{SMOL} accepts only text/plain input "
            "(contents[0].parts[1].inline_data)."),
        "openai": (SMOL, {"messages": OPENAI_IMAGE},
                   ("Invalid content type. image_url is only supported by certain models; "
                    "this model does not accept image/png.", "messages", "invalid_value")),
        "anthropic": (SMOL, {"messages": ANTHROPIC_IMAGE},
                      f"messages: '{SMOL}' does not accept image/png input; it accepts only "
                      "text/plain"),
    },
    "temperature-above-the-models-maximum": {
        "gemini": ("cool-model", {"generationConfig": {"temperature": 0.8}},
                   "* GenerateContentRequest.generation_config.temperature: temperature must "
                   "be between 0 and 0.5 for models/cool-model."),
        "openai": ("cool-model", {"temperature": 0.8},
                   ("Invalid 'temperature': decimal above maximum value. Expected a value "
                    "<= 0.5, but got 0.8 instead.", "temperature", "decimal_above_max_value")),
        "anthropic": ("cool-model", {"temperature": 0.8},
                      "temperature: Input should be less than or equal to 0.5 for "
                      "'cool-model'"),
    },
    "output-over-the-models-limit": {
        "gemini": (SMOL, {"generationConfig": {"maxOutputTokens": 9000}},
                   "* GenerateContentRequest.generation_config.max_output_tokens: "
                   f"max_output_tokens (9000) exceeds the limit of models/{SMOL} (8192)."),
        "openai": (SMOL, {"max_tokens": 9000},
                   ("max_tokens is too large: 9000. This model supports at most 8192 "
                    "completion tokens, whereas you provided 9000.", "max_tokens",
                    "invalid_value")),
        "anthropic": (SMOL, {"max_tokens": 9000},
                      "max_tokens: 9000 > 8192, which is the maximum allowed number of output "
                      f"tokens for {SMOL}"),
    },
}
CELLS = [(refusal, dialect, *cell) for refusal, row in TABLE.items()
         for dialect, cell in row.items()]


@pytest.mark.parametrize(("refusal", "dialect", "model", "fields", "expected"), CELLS,
                         ids=[f"{cell[0]}-{cell[1]}" for cell in CELLS])
async def test_each_refusal_in_each_dialect(
    dialects: Dialects, refusal: str, dialect: str, model: str, fields: dict[str, Any],
    expected: Any,
) -> None:
    del refusal
    response = await getattr(dialects, dialect)(model, **fields)
    if expected is ANSWERED:
        assert response.status_code == 200, response.text
        assert dialects.upstream_requests() == 1
        return
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    body = response.json()
    if dialect == "gemini":
        assert body == {"error": {"code": 400, "message": expected, "status": "INVALID_ARGUMENT",
                                  **({"details": body["error"]["details"]}
                                     if "details" in body["error"] else {})}}
    elif dialect == "openai":
        message, param, code = expected
        assert body == {"error": {"message": message, "type": "invalid_request_error",
                                  "param": param, "code": code}}
    else:
        assert body["type"] == "error"
        assert body["error"] == {"type": "invalid_request_error", "message": expected}
    assert dialects.upstream_requests() == 0


async def test_an_openai_caller_hears_the_limit_field_it_sent(dialects: Dialects) -> None:
    response = await dialects.openai(SMOL, max_completion_tokens=9000)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "max_completion_tokens is too large: 9000. This model supports at most 8192 "
                   "completion tokens, whereas you provided 9000.",
        "type": "invalid_request_error", "param": "max_completion_tokens",
        "code": "invalid_value"}
    assert dialects.upstream_requests() == 0


async def test_a_stream_refusal_is_the_same_answer(dialects: Dialects) -> None:
    response = await dialects.anthropic(SMOL, max_tokens=9000, stream=True)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("max_tokens: 9000 > 8192")
    response = await dialects.openai(SMOL, max_tokens=9000, stream=True)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_tokens"
    assert dialects.upstream_requests() == 0
