"""What a request asks for beyond one answer's tokens, through the whole app: candidates,
searches and service tiers reserved up front and recorded from what the upstream reports, and
billable fields refused to keys with a budget or a strict translation policy unless their
operator allowed them.

A Gemini-kind provider (pass-through for Gemini callers) and an OpenAI-kind provider
(pass-through for OpenAI callers) sit in front of the fake upstreams, in process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.dialects.gemini.estimate import estimate
from cometgate.dialects.openai.caller_request import estimate_chat
from cometgate.providers.gemini import GeminiProvider
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.settings import OpenAIProviderSettings, Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.fakes.gemini_upstream import FakeGeminiUpstream, search_grounding
from tests.fakes.gemini_upstream import Reply as GeminiReply
from tests.fakes.openai_upstream import FakeOpenAIUpstream

# USD per million tokens: a prompt token costs 0.001 USD, an output token 0.002 USD; a
# grounded answer 0.035 USD; the priority tier twice the token prices.
CONFIG = """
routing: {retries: 0}
limits: {max_candidates: %(cap)d}
providers:
  google: {kind: gemini, base_url: "http://fake-gemini"}
  oai: {kind: openai, base_url: "http://fake-openai/v1"}
models:
  gem:
    provider: google
    upstream_model: gemini-up
    input_token_limit: 8192
    output_token_limit: 1000
    prices: {input: 1000, output: 2000, per_1k_searches: 35}
  gem-strict:
    provider: google
    upstream_model: gemini-up
    translation: strict
    input_token_limit: 8192
    output_token_limit: 1000
  oai:
    provider: oai
    upstream_model: oai-up
    input_token_limit: 8192
    output_token_limit: 1000
    prices: {input: 1000, output: 2000, service_tiers: {priority: 2, flex: 0.5}}
"""
INPUT, OUTPUT = Decimal("0.001"), Decimal("0.002")
SEARCH = Decimal("0.035")
MAX_OUTPUT = 100
GENERATE = "/v1beta/models/gem:generateContent"
STREAM = "/v1beta/models/gem:streamGenerateContent?alt=sse"
CHAT = "/v1/chat/completions"


def gemini_body(**extra: Any) -> dict[str, Any]:
    config = {"maxOutputTokens": MAX_OUTPUT, **extra.pop("config", {})}
    return {"contents": [{"role": "user", "parts": [{"text": "Who won?"}]}],
            "generationConfig": config, **extra}


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "oai", "messages": [{"role": "user", "content": "Who won?"}],
            "max_tokens": MAX_OUTPUT, **extra}


def gemini_worst(body: dict[str, Any], candidates: int = 1) -> Decimal:
    prompt, _ = estimate(orjson.dumps(body))
    return prompt * INPUT + candidates * MAX_OUTPUT * OUTPUT


def chat_worst(body: dict[str, Any], candidates: int = 1) -> Decimal:
    prompt, _ = estimate_chat(body)
    return prompt * INPUT + candidates * MAX_OUTPUT * OUTPUT


class Gateway:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, gemini: FakeGeminiUpstream,
                 openai: FakeOpenAIUpstream, records: Callable[[], Any]) -> None:
        self.http, self.settings, self.gemini, self.openai = http, settings, gemini, openai
        self._records = records

    async def key(self, name: str = "k", **policy: Any) -> str:
        async with await open_database(self.settings.database_url) as database:
            _, key = await KeyRepository(database).create(name, **policy)
        return key

    async def gemini_call(self, key: str, body: dict[str, Any],
                          path: str = GENERATE) -> httpx.Response:
        return await self.http.post(path, json=body, headers={"x-goog-api-key": key})

    async def chat(self, key: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(CHAT, json=body, headers={"authorization": f"Bearer {key}"})

    async def records(self) -> list[UsageRecord]:
        result: list[UsageRecord] = await self._records()
        return result


OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def open_gateway(tmp_path: Path) -> OpenGateway:
    @contextlib.asynccontextmanager
    async def opened(cap: int = 8) -> AsyncIterator[Gateway]:
        path = tmp_path / "billable.yaml"
        path.write_text(CONFIG % {"cap": cap}, encoding="utf-8")
        settings = load_settings(path, data_dir=tmp_path / "data", env={"HOME": str(tmp_path)})
        gemini, openai = FakeGeminiUpstream(), FakeOpenAIUpstream()
        spec = settings.provider("oai")
        assert isinstance(spec, OpenAIProviderSettings)
        providers = {
            "google": GeminiProvider(
                "google", base_url="http://fake-gemini", api_key="g-key",
                timeouts=spec.timeouts,
                client=httpx.AsyncClient(transport=httpx.ASGITransport(app=gemini.app))),
            "oai": http_provider(
                "oai", base_url=spec.base_url, options=openai_options(spec),
                timeouts=spec.timeouts,
                client=httpx.AsyncClient(transport=httpx.ASGITransport(app=openai.app))),
        }
        app = create_app(settings, providers=providers)

        async def records() -> list[UsageRecord]:
            await app.state.usage_log.flush()
            async with await open_database(settings.database_url) as database:
                return await UsageQueries(database).records()

        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://gateway") as http:
                yield Gateway(http, settings, gemini, openai, records)

    return opened


@pytest.fixture
async def gateway(open_gateway: OpenGateway) -> AsyncIterator[Gateway]:
    async with open_gateway() as opened:
        yield opened


def _gemini_refusal(response: httpx.Response, path: str, why: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    message: str = error["message"]
    assert message.startswith(f"{path} is not allowed for this API key, which {why}: ")
    assert error["details"][0]["fieldViolations"][0]["field"] == path
    return message


def _openai_refusal(response: httpx.Response, param: str, why: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", param, None)
    message: str = error["message"]
    assert message.startswith(f"{param} is not allowed for this API key, which {why}: ")
    return message


# --- (a) every candidate is reserved ------------------------------------------------------------


async def test_a_gemini_reservation_counts_every_candidate(gateway: Gateway) -> None:
    three = gemini_body(config={"candidateCount": 3})
    # Room for two candidates' worst case, not three: only the count can tell them apart.
    key = await gateway.key(budget_total_usd=gemini_worst(three, candidates=2))
    refused = await gateway.gemini_call(key, three)
    assert refused.status_code == 429, refused.text
    assert "Budget exhausted" in refused.json()["error"]["message"]
    assert gateway.gemini.requests == []
    two = gemini_body(config={"candidate_count": 2})
    assert (await gateway.gemini_call(key, two)).status_code == 200


async def test_an_openai_reservation_counts_every_choice(gateway: Gateway) -> None:
    three = chat_body(n=3)
    key = await gateway.key(budget_total_usd=chat_worst(three, candidates=2))
    refused = await gateway.chat(key, three)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert gateway.openai.requests == []
    assert (await gateway.chat(key, chat_body(n=2))).status_code == 200


# --- (b) searches and tiers: reserved when asked for, recorded as reported ----------------------


async def test_a_search_is_reserved_when_the_request_offers_it(gateway: Gateway) -> None:
    searching = gemini_body(tools=[{"googleSearch": {}}])
    key = await gateway.key(budget_total_usd=gemini_worst(searching) + SEARCH / 2,
                            allowed_passthrough=("googleSearch",))
    refused = await gateway.gemini_call(key, searching)
    assert refused.status_code == 429, refused.text
    assert (await gateway.gemini_call(key, gemini_body())).status_code == 200


@pytest.mark.parametrize("path", [GENERATE, STREAM])
async def test_a_grounded_answer_is_recorded_with_its_search(
    gateway: Gateway, path: str
) -> None:
    key = await gateway.key()
    gateway.gemini.replies.append(GeminiReply(grounding=search_grounding("who won")))
    answer = await gateway.gemini_call(key, gemini_body(tools=[{"google_search": {}}]), path)
    assert answer.status_code == 200, answer.text
    assert b"groundingMetadata" in answer.content  # forwarded as Google sent it
    seen = orjson.loads(gateway.gemini.requests[0].body)
    assert seen["tools"] == [{"google_search": {}}]
    [record] = await gateway.records()
    assert (record.prompt_tokens, record.output_tokens, record.searches) == (8, 6, 1)
    assert record.cost_usd == 8 * INPUT + 6 * OUTPUT + SEARCH


async def test_an_answer_the_model_did_not_ground_costs_its_tokens_only(
    gateway: Gateway,
) -> None:
    key = await gateway.key()
    gateway.gemini.replies.append(GeminiReply(searches=False))  # the model chose not to
    answer = await gateway.gemini_call(key, gemini_body(tools=[{"googleSearch": {}}]))
    assert answer.status_code == 200, answer.text
    [record] = await gateway.records()
    assert record.searches == 0
    assert record.cost_usd == 8 * INPUT + 6 * OUTPUT


async def test_a_priority_tier_is_reserved_at_its_factor(gateway: Gateway) -> None:
    priority = chat_body(service_tier="priority")
    key = await gateway.key(budget_total_usd=chat_worst(priority) * Decimal("1.5"),
                            allowed_passthrough=("service_tier",))
    refused = await gateway.chat(key, priority)
    assert refused.status_code == 429, refused.text
    assert gateway.openai.requests == []
    assert (await gateway.chat(key, chat_body(service_tier="flex"))).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("tier", "factor"), [("priority", 2), ("flex", Decimal("0.5")),
                                               ("auto", 1)])
async def test_the_tier_the_upstream_reports_prices_the_record(
    gateway: Gateway, stream: bool, tier: str, factor: Decimal
) -> None:
    key = await gateway.key()
    answer = await gateway.chat(key, chat_body(service_tier=tier, stream=stream))
    assert answer.status_code == 200, answer.text
    assert gateway.openai.requests[0]["service_tier"] == tier
    [record] = await gateway.records()
    assert (record.prompt_tokens, record.output_tokens) == (7, 5)
    assert record.cost_usd == (7 * INPUT + 5 * OUTPUT) * factor


# --- (c) billable fields and the keys that may send them ----------------------------------------

TOOLS = "the upstream bills built-in tools beyond the tokens the gateway reserves for a request"
CACHE = ("a cached context is billed for the time it is kept, beyond the tokens the gateway "
         "reserves for a request")
GEMINI_REFUSALS = [
    (gemini_body(tools=[{"googleSearch": {}}]), "tools[0].googleSearch", "googleSearch", TOOLS),
    (gemini_body(tools=[{"functionDeclarations": [{"name": "f"}]}, {"url_context": {}}]),
     "tools[1].url_context", "urlContext", TOOLS),
    (gemini_body(tools=[{"codeExecution": {}}]), "tools[0].codeExecution", "codeExecution",
     TOOLS),
    (gemini_body(cachedContent="cachedContents/abc123"), "cachedContent", "cachedContent",
     CACHE),
    (gemini_body(config={"candidateCount": 9}), "generationConfig.candidateCount",
     "candidateCount", "9 candidates exceed the 8 a key may ask for"),
]


@pytest.mark.parametrize(("body", "path", "name", "reason"), GEMINI_REFUSALS)
async def test_a_budgeted_key_is_refused_billable_gemini_fields(
    gateway: Gateway, body: dict[str, Any], path: str, name: str, reason: str
) -> None:
    key = await gateway.key(budget_period="month", budget_period_usd=Decimal(5))
    message = _gemini_refusal(await gateway.gemini_call(key, body), path, "has a budget")
    assert message == (f"{path} is not allowed for this API key, which has a budget: {reason}. "
                       "The gateway's operator can allow it for this key "
                       f"(allowed_passthrough: {name}).")
    assert gateway.gemini.requests == []
    assert await gateway.records() == []  # refused at the door, like any access rule


OPENAI_REFUSALS = [
    (chat_body(service_tier="priority"), "service_tier",
     "a service tier other than auto or default is billed above the standard rate"),
    (chat_body(n=9), "n", "9 candidates exceed the 8 a key may ask for"),
    (chat_body(web_search_options={}), "web_search_options", TOOLS),
]


@pytest.mark.parametrize(("body", "param", "reason"), OPENAI_REFUSALS)
async def test_a_budgeted_key_is_refused_billable_openai_fields(
    gateway: Gateway, body: dict[str, Any], param: str, reason: str
) -> None:
    key = await gateway.key(budget_total_usd=Decimal(5))
    message = _openai_refusal(await gateway.chat(key, body), param, "has a budget")
    assert message == (f"{param} is not allowed for this API key, which has a budget: "
                       f"{reason}. The gateway's operator can allow it for this key "
                       f"(allowed_passthrough: {param}).")
    assert gateway.openai.requests == []


async def test_a_strict_key_or_a_strict_model_refuses_them_without_a_budget(
    gateway: Gateway,
) -> None:
    body = gemini_body(tools=[{"googleSearch": {}}])
    strict = await gateway.key("strict", translation="strict")
    _gemini_refusal(await gateway.gemini_call(strict, body), "tools[0].googleSearch",
                    "has a strict translation policy")
    plain = await gateway.key("plain")
    _gemini_refusal(
        await gateway.gemini_call(plain, body, "/v1beta/models/gem-strict:generateContent"),
        "tools[0].googleSearch", "has a strict translation policy")
    # The key's own policy overrides the model's, both ways.
    lenient = await gateway.key("lenient", translation="lenient")
    answer = await gateway.gemini_call(lenient, body, "/v1beta/models/gem-strict:generateContent")
    assert answer.status_code == 200, answer.text
    assert len(gateway.gemini.requests) == 1


async def test_what_the_operator_allows_and_what_is_not_billable_goes_through(
    gateway: Gateway,
) -> None:
    key = await gateway.key(budget_total_usd=Decimal(100),
                            allowed_passthrough=("googleSearch", "cachedContent", "n"))
    cache = await gateway.http.post(
        "/v1beta/cachedContents", headers={"x-goog-api-key": key},
        json={"model": "models/gem", "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    assert cache.status_code == 200, cache.text
    allowed = gemini_body(tools=[{"google_search": {}}, {"functionDeclarations": [{"name": "f"}]}],
                          config={"candidateCount": 8})  # at the cap
    assert (await gateway.gemini_call(key, allowed)).status_code == 200
    # A request using a cache may not set its own tools (Google's rule): a call of its own.
    cached = gemini_body(cachedContent=cache.json()["name"])
    assert (await gateway.gemini_call(key, cached)).status_code == 200, cached
    # The upstream's own copy of the gateway's cache is what the request names there.
    assert orjson.loads(gateway.gemini.requests[-1].body)["cachedContent"] == (
        "cachedContents/fake1")
    for body in (chat_body(n=64), chat_body(service_tier="auto"),
                 chat_body(service_tier="default"), chat_body(n=1)):
        answer = await gateway.chat(key, body)
        assert answer.status_code == 200, answer.text
    _openai_refusal(await gateway.chat(key, chat_body(service_tier="priority")),
                    "service_tier", "has a budget")


async def test_a_key_with_no_budget_and_no_strict_policy_sends_what_it_likes(
    gateway: Gateway,
) -> None:
    key = await gateway.key()
    body = gemini_body(tools=[{"googleSearch": {}}, {"codeExecution": {}}],
                       config={"candidateCount": 9})
    assert (await gateway.gemini_call(key, body)).status_code == 200
    assert (await gateway.chat(key, chat_body(n=128, service_tier="priority"))).status_code == 200


async def test_the_candidate_cap_is_the_operators(open_gateway: OpenGateway) -> None:
    async with open_gateway(cap=2) as gateway:
        key = await gateway.key(budget_total_usd=Decimal(100))
        assert (await gateway.chat(key, chat_body(n=2))).status_code == 200
        message = _openai_refusal(await gateway.chat(key, chat_body(n=3)), "n", "has a budget")
        assert "3 candidates exceed the 2 a key may ask for" in message


RESPONSES = "/v1/responses"


def responses_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gem", "input": "Who won?", "max_output_tokens": MAX_OUTPUT, **extra}


async def test_a_responses_web_search_is_billable(gateway: Gateway) -> None:
    """A budgeted key is refused the Responses web_search tool unless its operator allows
    it; allowed, the search is reserved and the grounded answer recorded with it."""
    searching = responses_body(tools=[{"type": "web_search"}])
    headers = {"authorization": f"Bearer {await gateway.key(budget_total_usd=Decimal(5))}"}
    refused = await gateway.http.post(RESPONSES, json=searching, headers=headers)
    message = _openai_refusal(refused, "tools[0]", "has a budget")
    assert message.endswith("(allowed_passthrough: web_search).")
    assert gateway.gemini.requests == []
    allowed = await gateway.key("allowed", budget_total_usd=Decimal(5),
                                allowed_passthrough=("web_search",))
    answer = await gateway.http.post(RESPONSES, json=searching,
                                     headers={"authorization": f"Bearer {allowed}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][0]["type"] == "web_search_call"
    [record] = await gateway.records()
    assert record.cost_usd == 8 * INPUT + 6 * OUTPUT + SEARCH
