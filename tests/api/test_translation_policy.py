"""The translation policy: what a translating upstream cannot carry is refused or dropped with
a report, as the model says, and a key may override the model."""

from __future__ import annotations

from typing import Any

from tests.api.bodies import GENERATE, error_of, text_body
from tests.api.conftest import ClientOpener, SettingsBuilder, create_key
from tests.fakes.openai_upstream import FakeOpenAIUpstream

SAFETY = {"safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH",
                              "threshold": "BLOCK_ONLY_HIGH"}]}
SEARCH = {"tools": [{"googleSearch": {}}]}


def body(**extra: Any) -> dict[str, Any]:
    return {**text_body(), **extra}


async def test_default_policy_drops_tuning_and_refuses_meaning(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings()
    key = {"x-goog-api-key": await create_key(settings)}
    async with open_client(settings) as http:
        tuned = await http.post(GENERATE, json=body(**SAFETY), headers=key)
        searched = await http.post(GENERATE, json=body(**SEARCH), headers=key)
    assert tuned.status_code == 200 and tuned.headers["x-cometgate-dropped"] == "safetySettings"
    assert searched.status_code == 400
    assert "tools[0].googleSearch" in error_of(searched.content)["message"]
    assert len(upstream.requests) == 1


async def test_a_strict_key_refuses_even_what_only_tunes(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings()
    strict = {"x-goog-api-key": await create_key(settings, "strict", translation="strict")}
    async with open_client(settings) as http:
        refused = await http.post(GENERATE, json=body(**SAFETY), headers=strict)
        plain = await http.post(GENERATE, json=body(), headers=strict)
    assert refused.status_code == 400
    assert "safetySettings is not supported" in error_of(refused.content)["message"]
    assert plain.status_code == 200 and len(upstream.requests) == 1


async def test_a_lenient_key_drops_and_reports_everything(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings()
    lenient = {"x-goog-api-key": await create_key(settings, "lenient", translation="lenient")}
    async with open_client(settings) as http:
        response = await http.post(GENERATE, json=body(**SEARCH, **SAFETY), headers=lenient)
    assert response.status_code == 200
    assert set(response.headers["x-cometgate-dropped"].split(",")) == {
        "tools[0].googleSearch", "safetySettings"}
    assert "tools" not in upstream.requests[0]


async def test_a_strict_model_refuses_what_its_upstream_codec_would_drop(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    # The shared fake accepts top_k; a signature on a text part is something the OpenAI
    # dialect has no field for, so a strict model refuses it before anything is sent.
    settings = build_settings(models={"strict-model": {
        "provider": "fake", "translation": "strict", "input_token_limit": 100,
        "output_token_limit": 10}})
    key = {"x-goog-api-key": await create_key(settings)}
    signed = {"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello", "thoughtSignature": "c2ln"}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]}
    async with open_client(settings) as http:
        response = await http.post("/v1beta/models/strict-model:generateContent", json=signed,
                                   headers=key)
    assert response.status_code == 400
    assert "signature" in error_of(response.content)["message"]
    assert upstream.requests == []
