"""What an upstream's refusal rests, and what the next caller is told: a 429 rests one model
of one provider's credential, a refused key rests that provider's key, a 403 about what one
caller may read rests nothing; and the Retry-After a caller sees is the rest that remains,
with the status that names its cause. Every provider kind, Gemini and OpenAI callers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.contract.conftest import (
    Fakes,
    Gateway,
    model_block,
    provider_block,
    running_gateway,
    settings_for,
)
from tests.contract.scenarios import error_of, parts_of, script_text, user
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai

KINDS = ("gemini", "openai", "anthropic")
# One variable, named by two providers of each kind: the same secret, two upstreams' verdicts.
SECRETS = {"SHARED": "shared-key"}
BODY = {"contents": [user("Hi")]}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
BREAKER_FAILURES = 2


def rests_config(fakes: Fakes) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for kind in KINDS:
        for name in (kind, f"{kind}-twin"):
            providers[name] = provider_block(kind, fakes.urls[kind], ["SHARED"])
        models[f"{kind}-hot"] = model_block([(kind, "hot-up")])
        models[f"{kind}-cool"] = model_block([(kind, "cool-up")])
        models[f"{kind}-twin"] = model_block([(f"{kind}-twin", "hot-up")])
    routing = {"retries": 0, "breaker_failures": BREAKER_FAILURES, "rate_limit_cooldown": 5.0,
               "credential_cooldown": 60.0, "max_retry_after": 0.0}
    return {"routing": routing, "providers": providers, "models": models}


@pytest.fixture
async def gw(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = settings_for(tmp_path, rests_config(fakes), SECRETS)
    async with running_gateway(settings) as running:
        running.app.state.settings = settings  # for a second key
        yield running


async def another_key(settings: Settings) -> str:
    database = await open_database(settings.database_url)
    try:
        _, key = await KeyRepository(database).create("another caller")
    finally:
        await database.aclose()
    return key


def generate(model: str) -> str:
    return f"/v1beta/models/{model}:generateContent"


def upstream_models(kind: str, fakes: Fakes) -> list[str]:
    """The upstream model of each request the fake of `kind` received, in order."""
    if kind == "gemini":
        return [seen.path.rsplit("/", 1)[-1].split(":")[0] for seen in fakes.gemini.requests]
    return [str(body["model"]) for body in getattr(fakes, kind).requests]


def rate_limited(kind: str, fakes: Fakes, seconds: int) -> None:
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(status=429, error=gemini.google_error(
            429, "RESOURCE_EXHAUSTED", "slow down", [gemini.retry_info(f"{seconds}s")])))
    elif kind == "openai":
        fakes.openai.replies.append(openai.Reply(
            status=429, error_type="rate_limit_exceeded", headers={"retry-after": str(seconds)}))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(
            status=429, error_type="rate_limit_error", headers={"retry-after": str(seconds)}))


def key_refused(kind: str, fakes: Fakes) -> None:
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(status=403, error=gemini.google_error(
            403, "PERMISSION_DENIED", "Consumer has been suspended.",
            [gemini.error_info("CONSUMER_SUSPENDED")])))
    elif kind == "openai":
        fakes.openai.replies.append(openai.Reply(
            status=401, error_type="invalid_request_error", error_code="invalid_api_key"))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(
            status=401, error_type="authentication_error"))


def forbidden(kind: str, fakes: Fakes) -> None:
    """A 403 naming no credential reason: what this caller's request may not touch."""
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(status=403, error=gemini.google_error(
            403, "PERMISSION_DENIED",
            "You do not have permission to access the File abc or it may not exist.")))
    elif kind == "openai":
        fakes.openai.replies.append(openai.Reply(status=403, error_type="invalid_request_error"))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(status=403,
                                                       error_type="permission_error"))


def retry_after(response: httpx.Response) -> int:
    seconds = int(response.headers["retry-after"])
    details = response.json()["error"].get("details", [])
    assert {"@type": RETRY_INFO, "retryDelay": f"{seconds}s"} in details  # one number, twice
    return seconds


@pytest.mark.parametrize("kind", KINDS)
async def test_a_429_rests_one_model_of_one_provider(gw: Gateway, fakes: Fakes,
                                                     kind: str) -> None:
    rate_limited(kind, fakes, 30)
    error_of(await gw.http.post(generate(f"{kind}-hot"), json=BODY), 429, "RESOURCE_EXHAUSTED")
    # The same key's other model, and the same variable's other provider, are untouched.
    script_text(kind, fakes, "cool answers")
    assert parts_of(await gw.http.post(generate(f"{kind}-cool"), json=BODY)) == [
        {"text": "cool answers"}]
    script_text(kind, fakes, "the twin answers")
    assert parts_of(await gw.http.post(generate(f"{kind}-twin"), json=BODY)) == [
        {"text": "the twin answers"}]
    assert upstream_models(kind, fakes) == ["hot-up", "cool-up", "hot-up"]
    # The resting model is refused by the gateway itself, with the rest that remains.
    again = await gw.http.post(generate(f"{kind}-hot"), json=BODY)
    error_of(again, 429, "RESOURCE_EXHAUSTED")
    assert 28 <= retry_after(again) <= 30
    streamed = await gw.http.post(f"/v1beta/models/{kind}-hot:streamGenerateContent?alt=sse",
                                  json=BODY)
    error_of(streamed, 429, "RESOURCE_EXHAUSTED")
    assert 28 <= retry_after(streamed) <= 30
    assert len(upstream_models(kind, fakes)) == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_a_refused_key_rests_for_every_model_of_its_provider_only(
    gw: Gateway, fakes: Fakes, kind: str
) -> None:
    key_refused(kind, fakes)
    first = await gw.http.post(generate(f"{kind}-hot"), json=BODY)
    error_of(first, 503, "UNAVAILABLE")
    cool = await gw.http.post(generate(f"{kind}-cool"), json=BODY)
    error_of(cool, 503, "UNAVAILABLE")
    assert 58 <= retry_after(cool) <= 60  # the credential's rest, not the breaker's 30 s
    script_text(kind, fakes, "the twin answers")
    assert parts_of(await gw.http.post(generate(f"{kind}-twin"), json=BODY)) == [
        {"text": "the twin answers"}]
    assert upstream_models(kind, fakes) == ["hot-up", "hot-up"]


async def test_the_retry_after_a_caller_sees_counts_down_the_real_rest(
    gw: Gateway, fakes: Fakes
) -> None:
    fakes.openai.replies.append(openai.Reply(
        status=429, error_type="rate_limit_exceeded", headers={"retry-after": "3"}))
    first = await gw.http.post(generate("openai-hot"), json=BODY)
    error_of(first, 429, "RESOURCE_EXHAUSTED")
    assert retry_after(first) == 3
    second = await gw.http.post(generate("openai-hot"), json=BODY)
    error_of(second, 429, "RESOURCE_EXHAUSTED")
    waits = [retry_after(second)]
    await asyncio.sleep(1.2)  # bounded: the one wait that shows the count going down
    third = await gw.http.post(generate("openai-hot"), json=BODY)
    waits.append(retry_after(third))
    assert waits[0] <= 3 and 1 <= waits[1] < waits[0]
    assert len(fakes.openai.requests) == 1  # both refused while the model rested
    await asyncio.sleep(waits[1] + 0.05)
    script_text("openai", fakes, "rested")
    assert parts_of(await gw.http.post(generate("openai-hot"), json=BODY)) == [
        {"text": "rested"}]


async def test_an_openai_caller_hears_the_rest_in_its_own_envelope(
    gw: Gateway, fakes: Fakes
) -> None:
    rate_limited("anthropic", fakes, 20)
    key = gw.http.headers["x-goog-api-key"]
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "anthropic-hot", "messages": [{"role": "user", "content": "Hi"}]}
    for _ in range(2):  # the upstream's own 429, then the gateway's while the model rests
        response = await gw.http.post("/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 429, response.text
        assert 18 <= int(response.headers["retry-after"]) <= 20
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert len(fakes.anthropic.requests) == 1
    script_text("anthropic", fakes, "cool answers")  # the same key's other model is untouched
    cool = await gw.http.post("/v1/chat/completions", headers=headers,
                              json={**body, "model": "anthropic-cool"})
    assert cool.status_code == 200, cool.text
    assert cool.json()["choices"][0]["message"]["content"] == "cool answers"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_403_without_a_credential_reason_is_the_callers_alone(
    gw: Gateway, fakes: Fakes, kind: str
) -> None:
    for _ in range(BREAKER_FAILURES + 1):  # more than would open the circuit, were they counted
        forbidden(kind, fakes)
        refused = await gw.http.post(generate(f"{kind}-hot"), json=BODY)
        error = error_of(refused, 403, "PERMISSION_DENIED")
        if kind == "gemini":  # a Gemini caller reads Google's own answer
            assert error["message"].startswith("You do not have permission to access the File")
    # Another key's call reaches the same upstream with the same credential at once.
    other = await another_key(gw.app.state.settings)
    script_text(kind, fakes, "not rested")
    answer = await gw.http.post(generate(f"{kind}-hot"), json=BODY,
                                headers={"x-goog-api-key": other})
    assert parts_of(answer) == [{"text": "not rested"}]
    assert fakes.layers[kind].credentials == ["shared-key"] * (BREAKER_FAILURES + 2)


async def test_an_openai_caller_gets_a_403_in_its_own_envelope(gw: Gateway, fakes: Fakes) -> None:
    forbidden("anthropic", fakes)
    key = gw.http.headers["x-goog-api-key"]
    body = {"model": "anthropic-hot", "messages": [{"role": "user", "content": "Hi"}]}
    response = await gw.http.post("/v1/chat/completions", json=body,
                                  headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "request_forbidden"
    script_text("anthropic", fakes, "fine")
    response = await gw.http.post("/v1/chat/completions", json=body,
                                  headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
