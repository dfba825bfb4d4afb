"""Every refusal reaches the caller as a Gemini 400 (or 413) with the right message, and the
upstream receives nothing."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.providers.http import TokenizingHttpProvider
from cometgate.providers.timeouts import Timeouts
from cometgate.settings import Settings
from tests.api.bodies import GENERATE, PNG_BASE64, STREAM, error_of, text_body, with_config
from tests.api.conftest import ClientOpener, SettingsBuilder, create_key
from tests.fakes.openai_upstream import FakeOpenAIUpstream

SMOL_PATH = "/v1beta/models/smollm2-135m-instruct:generateContent"
BUDGET_PATH = "/v1beta/models/budget-thinker:generateContent"
LEVEL_PATH = "/v1beta/models/level-thinker:generateContent"


def thinking(**config: Any) -> dict[str, Any]:
    return with_config(thinkingConfig=config)


def image_body() -> dict[str, Any]:
    return {"contents": [{"parts": [
        {"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}},
    ]}]}


REFUSALS: list[tuple[str, str, Any, str]] = [
    ("thinking-on-smollm2", SMOL_PATH, thinking(thinkingBudget=1024),
     "Thinking is not enabled for models/smollm2-135m-instruct"),
    ("include-thoughts-on-smollm2", SMOL_PATH, thinking(includeThoughts=True),
     "Thinking is not enabled for models/smollm2-135m-instruct"),
    ("level-on-budget-model", BUDGET_PATH, thinking(thinkingLevel="LOW"),
     "Thinking level is not supported for this model."),
    ("level-not-offered", LEVEL_PATH, thinking(thinkingLevel="MEDIUM"),
     "Thinking level MEDIUM is not supported for this model."),
    ("budget-zero-cannot-disable", BUDGET_PATH, thinking(thinkingBudget=0),
     "Budget 0 is invalid. This model only works in thinking mode."),
    ("budget-below-range", BUDGET_PATH, thinking(thinkingBudget=127),
     "The thinking budget (127) is invalid. Valid budgets for models/budget-thinker are 128 "
     "to 24576, 0 (off) or -1."),
    ("budget-above-range", BUDGET_PATH, thinking(thinkingBudget=24577),
     "The thinking budget (24577) is invalid."),
    ("budget-and-level", BUDGET_PATH, thinking(thinkingBudget=1024, thinkingLevel="LOW"),
     "You can only set only one of thinking budget and thinking level."),
    ("image-on-text-model", SMOL_PATH, image_body(),
     "Unsupported MIME type: image/png. models/smollm2-135m-instruct accepts only text/plain"),
    ("google-search", SMOL_PATH, {**text_body(), "tools": [{"googleSearch": {}}]},
     "tools[0].googleSearch is not supported by models/smollm2-135m-instruct"),
    ("code-execution", SMOL_PATH, {**text_body(), "tools": [{"codeExecution": {}}]},
     "tools.codeExecution is not supported by models/smollm2-135m-instruct: it runs no code, "
     "natively or in this gateway's sandbox."),
    ("google-maps", SMOL_PATH, {**text_body(), "tools": [{"googleMaps": {}}]},
     "tools.googleMaps is not supported by models/smollm2-135m-instruct: Google Maps grounding "
     "is served only by Google's Gemini API. No model here has it."),
    ("unknown-field", SMOL_PATH, {**text_body(), "bogusField": 1},
     'Invalid JSON payload received. Unknown name "bogusField": Cannot find field.'),
    ("unknown-nested-field", SMOL_PATH, with_config(temprature=0.5),
     'Unknown name "temprature"'),
    ("fractional-top-k", SMOL_PATH, with_config(topK=2.5),
     "Invalid value at 'generation_config.top_k' (TYPE_INT32), 2.5"),
    ("unknown-safety-category", SMOL_PATH,
     {**text_body(), "safetySettings": [{"category": "HARM_CATEGORY_NOPE",
                                         "threshold": "BLOCK_NONE"}]},
     "Invalid value at 'safety_settings[0].category'"),
    ("refused-safety-category", SMOL_PATH,
     {**text_body(), "safetySettings": [{"category": "HARM_CATEGORY_DEROGATORY",
                                         "threshold": "BLOCK_NONE"}]},
     "element predicate failed: $.category in (HarmCategory.HARM_CATEGORY_HATE_SPEECH"),
    ("duplicate-safety-category", SMOL_PATH,
     {**text_body(), "safetySettings": [
         {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
         {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]},
     "Multiple safety settings with the same category."),
    ("malformed-json", SMOL_PATH, b'{"contents": [',
     "Invalid JSON payload received."),
    ("json-not-an-object", SMOL_PATH, b"[1, 2]",
     "Invalid JSON payload received. Root element must be a message."),
    ("contents-wrong-type", SMOL_PATH, {"contents": "hello"},
     "Invalid value at 'contents[0]'"),
    ("text-wrong-type", SMOL_PATH, {"contents": [{"parts": [{"text": 5}]}]},
     "Invalid value at 'contents[0].parts[0].text' (TYPE_STRING), 5"),
    ("temperature-wrong-type", SMOL_PATH, with_config(temperature="hot"),
     "Invalid value at 'generation_config.temperature'"),
    ("empty-contents", SMOL_PATH, {"contents": []},
     "* GenerateContentRequest.contents: contents is not specified"),
    ("no-contents", SMOL_PATH, {}, "contents is not specified"),
    ("empty-parts", SMOL_PATH, {"contents": [{"role": "user", "parts": []}]},
     "contents.parts must not be empty"),
    ("bad-role", SMOL_PATH, {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
     "Please use a valid role: user, model."),
    ("temperature-above-api-range", SMOL_PATH, with_config(temperature=2.5),
     "temperature must be in the range [0.0, 2.0]."),
    ("max-tokens-above-model-limit", BUDGET_PATH, with_config(maxOutputTokens=501),
     "max_output_tokens (501) exceeds the limit of models/budget-thinker (500)."),
    ("speech-output", SMOL_PATH, with_config(speechConfig={}),
     "generationConfig.speechConfig is not supported"),
]


@pytest.mark.parametrize(
    "path, body, message", [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
async def test_refusal_is_a_gemini_400_and_nothing_goes_upstream(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, path: str, body: Any, message: str
) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await client.post(path, content=content,
                                 headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    error = error_of(response.content)
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("path, body, message", [REFUSALS[0][1:], REFUSALS[8][1:]],
                         ids=["thinking", "image"])
async def test_stream_refusals_are_http_400_too(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, path: str, body: Any, message: str
) -> None:
    stream_path = path.replace(":generateContent", ":streamGenerateContent?alt=sse")
    response = await client.post(stream_path, json=body)
    assert response.status_code == 400
    assert message in error_of(response.content)["message"]
    assert upstream.requests == []


async def test_refusals_name_the_field_in_bad_request_details(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(GENERATE, json=with_config(topP=1.5, temperature=-1))
    error = error_of(response.content)
    (details,) = error["details"]
    assert details["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    fields = {v["field"] for v in details["fieldViolations"]}
    assert fields == {"generation_config.top_p", "generation_config.temperature"}
    assert error["message"].count("\n") == 1  # both problems, one per line


async def test_image_refusal_names_the_mime_type_and_model(client: httpx.AsyncClient) -> None:
    error = error_of((await client.post(SMOL_PATH, json=image_body())).content)
    assert "image/png" in error["message"] and "models/smollm2-135m-instruct" in error["message"]


async def test_dynamic_budget_passes_on_a_budget_model(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(BUDGET_PATH, json=thinking(thinkingBudget=-1))
    assert response.status_code == 200
    assert "reasoning_effort" not in upstream.requests[0]


@pytest.mark.parametrize("path, config", [(BUDGET_PATH, {"thinkingBudget": 1024}),
                                          (LEVEL_PATH, {"thinkingLevel": "LOW"})])
async def test_valid_thinking_on_a_configured_thinking_model_is_answered(
    client: httpx.AsyncClient, path: str, config: dict[str, Any]
) -> None:
    response = await client.post(path, json=thinking(**config))
    assert response.status_code == 200


async def test_valid_thinking_reaches_a_reasoning_upstream(
    settings: Settings, upstream: FakeOpenAIUpstream, api_key: str
) -> None:
    provider = TokenizingHttpProvider(
        "fake", base_url="http://fake-upstream/v1",
        options=OpenAIOptions(accepts_top_k=True, supports_reasoning=True),
        timeouts=Timeouts(),
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)),
    )
    app = create_app(settings, providers={"fake": provider})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway",
        headers={"x-goog-api-key": api_key},
    ) as http:
        budget = await http.post(BUDGET_PATH, json=thinking(thinkingBudget=24576))
        level = await http.post(LEVEL_PATH, json=thinking(thinkingLevel="LOW"))
        refused = await http.post(BUDGET_PATH, json=thinking(thinkingBudget=24577))
    assert (budget.status_code, level.status_code, refused.status_code) == (200, 200, 400)
    assert [r["reasoning_effort"] for r in upstream.requests] == ["high", "low"]


async def test_integral_float_top_k_is_accepted(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json=with_config(topK=20.0))
    assert response.status_code == 200
    assert upstream.requests[0]["top_k"] == 20 and type(upstream.requests[0]["top_k"]) is int


async def test_temperature_over_the_models_maximum(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    cool = {"provider": "fake", "input_token_limit": 100, "output_token_limit": 100,
            "max_temperature": 1.0}
    settings = build_settings(models={"cool-model": cool})
    key = await create_key(settings)
    async with open_client(settings) as http:
        path = "/v1beta/models/cool-model:generateContent"
        refused = await http.post(path, json=with_config(temperature=1.5),
                                  headers={"x-goog-api-key": key})
        accepted = await http.post(path, json=with_config(temperature=1.0),
                                   headers={"x-goog-api-key": key})
    assert refused.status_code == 400
    assert "temperature must be between 0 and 1 for models/cool-model" in (
        error_of(refused.content)["message"]
    )
    assert accepted.status_code == 200
    assert [r["temperature"] for r in upstream.requests] == [1.0]


async def test_body_over_the_limit_is_413(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings(server={"max_body_bytes": 200})
    key = await create_key(settings)
    small = text_body("x" * 10)
    large = text_body("x" * 400)

    async def chunked() -> Any:  # no Content-Length: the limit must hold while reading
        for _ in range(5):
            yield b" " * 100
        yield orjson.dumps(small)

    async with open_client(settings) as http:
        headers = {"x-goog-api-key": key}
        fits = await http.post(GENERATE, json=small, headers=headers)
        declared = await http.post(GENERATE, json=large, headers=headers)
        streamed = await http.post(STREAM, content=chunked(), headers=headers)
    assert fits.status_code == 200
    for response in (declared, streamed):
        assert response.status_code == 413
        assert error_of(response.content)["code"] == 413
        assert "200 bytes" in error_of(response.content)["message"]
    assert len(upstream.requests) == 1
