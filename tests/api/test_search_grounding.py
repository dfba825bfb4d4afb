"""Google Search grounding (`googleSearch`, and the legacy `googleSearchRetrieval`) for Gemini
callers on every model, over real loopback sockets: emulated through a SearXNG-shaped search
server for an OpenAI-compatible upstream without a search, native through the Anthropic and
OpenAI search shapes of the fake upstreams; whole and streamed; faults of the search backend;
refusals where neither serves; searches counted and priced in the usage record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.contract.conftest import (
    SECRETS,
    Fakes,
    Gateway,
    contract_config,
    model_block,
    provider_block,
    running_fakes,
    running_gateway,
    settings_for,
)
from tests.contract.upstreams import served
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import openai_upstream as openai
from tests.fakes.searxng import PAGES, FakeSearch

QUESTION = "Wie viele Einwohner hat Köln?"
# Cites its sources as asked: [1] and [2] are the fake search's two pages.
CITING = ("Köln liegt am Rhein und hat über eine Million Einwohner [1]. "
          "Der Dom wurde 1248 begonnen [2]. Schön, nicht?")
# Cites nothing: its first sentence shares its words with the first page only.
UNCITED = ("Köln liegt am Rhein und ist mit vielen Museen die größte Stadt in Nordrhein-Westfalen. "
           "Ich mag Kuchen.")
PER_1K_SEARCHES = Decimal("35")


def planned(*queries: str) -> openai.Reply:
    """The model's answer to the gateway's query planning: a web_search call."""
    return openai.Reply(text=None, finish_reason="tool_calls", tool_calls=[
        {"name": "web_search", "arguments": {"queries": list(queries)}}])


def script_emulated(fakes: Fakes, answer: str, **reply: Any) -> None:
    fakes.openai.replies += [planned(QUESTION), openai.Reply(text=answer, **reply)]


def gemini_path(model: str, *, stream: bool = False) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}"


def searching(tool: str = "googleSearch", question: str = QUESTION) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": question}]}],
            "tools": [{tool: {}}]}


def grounding_config(fakes: Fakes, search_url: str | None,
                     **search: Any) -> dict[str, Any]:
    config = contract_config(fakes)
    prices = {"input": 1, "output": 2, "per_1k_searches": str(PER_1K_SEARCHES)}
    config["models"]["openai-text"]["prices"] = [prices]
    config["models"]["openai-off"] = model_block([("openai", "gpt-up")], grounding="off")
    config["models"]["openai-native-only"] = model_block([("openai", "gpt-up")],
                                                         grounding="native")
    config["models"]["anthropic-emulated"] = model_block([("anthropic", "claude-up")],
                                                         grounding="emulate")
    config["providers"]["openai-search"] = provider_block(
        "openai", fakes.urls["openai"], ["OPENAI_KEY"], web_search=True)
    config["models"]["openai-search"] = model_block([("openai-search", "gpt-search-up")])
    if search_url is not None:
        config["grounding"] = {"search": {"kind": "searxng", "base_url": search_url,
                                          **search}}
    return config


@asynccontextmanager
async def grounded_gateway(tmp_path: Path, *, backend: bool = True,
                           **search: Any) -> AsyncIterator[tuple[Gateway, Fakes, FakeSearch]]:
    engine = FakeSearch()
    async with running_fakes() as fakes, served(engine.app) as (search_url,):
        config = grounding_config(fakes, search_url if backend else None, **search)
        try:
            async with running_gateway(settings_for(tmp_path, config, SECRETS)) as gateway:
                yield gateway, fakes, engine
        finally:
            engine.release.set()


def metadata_of(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body["candidates"][0]["groundingMetadata"]
    assert isinstance(metadata, dict)
    return metadata


def assert_supports_point_into(answer: str, metadata: dict[str, Any]) -> None:
    """Every segment's text is the answer's text at its offsets, counted in UTF-8 bytes as
    Google counts them; every chunk index names a chunk; one score per index."""
    encoded = answer.encode()
    chunks = metadata["groundingChunks"]
    assert metadata["groundingSupports"]
    for support in metadata["groundingSupports"]:
        segment = support["segment"]
        start, end = segment.get("startIndex", 0), segment["endIndex"]
        assert encoded[start:end].decode() == segment["text"]
        assert support["groundingChunkIndices"]
        assert all(0 <= i < len(chunks) for i in support["groundingChunkIndices"])
        assert len(support["confidenceScores"]) == len(support["groundingChunkIndices"])
        assert all(0 < score <= 1 for score in support["confidenceScores"])


def answer_text(body: dict[str, Any]) -> str:
    parts = body["candidates"][0]["content"].get("parts", [])
    return "".join(p.get("text", "") for p in parts)


def stream_chunks(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(block.removeprefix("data: "))
            for block in text.split("\r\n\r\n") if block.strip()]


# --- emulated: the gateway's own search -----------------------------------------------------


async def test_an_emulated_search_grounds_the_answer_in_the_sources(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        script_emulated(fakes, CITING)
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
        assert response.status_code == 200, response.text
        body = response.json()
        record = await gateway.record(response)
    assert engine.queries == [QUESTION]
    plan, sent = fakes.openai.requests
    assert [t["function"]["name"] for t in plan["tools"]] == ["web_search"]
    assert plan["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert "web_search_options" not in plan
    assert "web_search_options" not in sent and "tools" not in sent
    system = sent["messages"][0]
    assert system["role"] == "system"
    assert f"[1] {PAGES[0].title}\nURL: {PAGES[0].url}" in system["content"]
    assert f"[2] {PAGES[1].title}" in system["content"]
    metadata = metadata_of(body)
    assert list(metadata) == ["searchEntryPoint", "groundingChunks", "groundingSupports",
                              "webSearchQueries"]
    assert metadata["webSearchQueries"] == [QUESTION]
    assert metadata["groundingChunks"] == [
        {"web": {"uri": p.url, "title": p.title}} for p in PAGES]
    assert_supports_point_into(CITING, metadata)
    texts = [(s["segment"]["text"], s["groundingChunkIndices"], s["confidenceScores"])
             for s in metadata["groundingSupports"]]
    assert texts == [
        ("Köln liegt am Rhein und hat über eine Million Einwohner [1].", [0], [1.0]),
        ("Der Dom wurde 1248 begonnen [2].", [1], [1.0])]
    assert "startIndex" not in metadata["groundingSupports"][0]["segment"]  # proto3: 0 left out
    rendered = metadata["searchEntryPoint"]["renderedContent"]
    assert "Wie viele Einwohner hat Köln?</a>" in rendered and "<style>" in rendered
    assert record.searches == 1
    assert (record.prompt_tokens, record.output_tokens) == (14, 10)  # the plan's and answer's
    tokens = Decimal(14 * 1 + 10 * 2) / 1_000_000
    assert record.cost_usd == tokens + PER_1K_SEARCHES / 1000


async def test_an_answer_that_cites_nothing_is_matched_to_its_sources(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, _):
        script_emulated(fakes, UNCITED)
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
    metadata = metadata_of(response.json())
    assert_supports_point_into(UNCITED, metadata)
    (support,) = metadata["groundingSupports"]
    assert support["segment"]["text"] == UNCITED.split(" Ich")[0]
    assert metadata["groundingChunks"][support["groundingChunkIndices"][0]]["web"]["uri"] == (
        PAGES[0].url)
    assert 0 < support["confidenceScores"][0] < 1


async def test_a_streamed_emulated_search_grounds_the_last_chunk(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, _):
        script_emulated(fakes, CITING, chunks=5)
        response = await gateway.http.post(gemini_path("openai-text", stream=True),
                                           json=searching())
        assert response.status_code == 200, response.text
        record = await gateway.record(response)
    chunks = stream_chunks(response.text)
    grounded = [c for c in chunks if "groundingMetadata" in c.get("candidates", [{}])[0]]
    assert grounded == [chunks[-1]]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    answer = "".join(answer_text(c) for c in chunks if "candidates" in c)
    assert answer == CITING
    metadata = metadata_of(chunks[-1])
    assert_supports_point_into(answer, metadata)
    assert metadata["webSearchQueries"] == [QUESTION]
    assert record.searches == 1


async def test_the_legacy_retrieval_tool_is_a_search_too(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        script_emulated(fakes, CITING)
        response = await gateway.http.post(
            gemini_path("openai-text"),
            json=searching("googleSearchRetrieval") | {"tools": [{"google_search_retrieval": {
                "dynamic_retrieval_config": {"mode": "MODE_DYNAMIC"}}}]})
    assert response.status_code == 200, response.text
    assert engine.queries == [QUESTION]
    assert_supports_point_into(CITING, metadata_of(response.json()))


async def test_a_model_set_to_emulate_uses_the_backend_over_its_own_search(
        tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.anthropic.replies += [
            anthropic.Reply(text=None, stop_reason="tool_use", tool_calls=[
                {"name": "web_search", "input": {"queries": [QUESTION]}}]),
            anthropic.Reply(text=CITING)]
        response = await gateway.http.post(gemini_path("anthropic-emulated"), json=searching())
    assert response.status_code == 200, response.text
    assert engine.queries == [QUESTION] and fakes.anthropic.searched == []
    assert_supports_point_into(CITING, metadata_of(response.json()))


async def test_the_model_writes_the_queries_where_it_can_call_tools(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.openai.replies += [planned("Köln Einwohner", " Kölner  Dom\n", "Köln Einwohner"),
                                 openai.Reply(text=CITING)]
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
        record = await gateway.record(response)
    assert sorted(engine.queries) == ["Köln Einwohner", "Kölner Dom"]
    metadata = metadata_of(response.json())
    assert metadata["webSearchQueries"] == ["Köln Einwohner", "Kölner Dom"]
    assert [c["web"]["uri"] for c in metadata["groundingChunks"]] == [p.url for p in PAGES]
    assert record.searches == 2


async def test_a_plan_without_queries_searches_for_the_question(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.openai.replies += [openai.Reply(text="I would rather not."),
                                 openai.Reply(text=CITING)]
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
    assert engine.queries == [QUESTION]
    assert_supports_point_into(CITING, metadata_of(response.json()))


async def test_a_refused_plan_searches_for_the_question(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.openai.replies += [openai.Reply(status=400), openai.Reply(text=CITING)]
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
    assert response.status_code == 200, response.text
    assert engine.queries == [QUESTION]
    assert answer_text(response.json()) == CITING


# --- faults of the search backend -------------------------------------------------------------


@pytest.mark.parametrize("fault", ["status", "not_json", "oversized", "hang"])
async def test_a_failed_search_leaves_the_answer_ungrounded(tmp_path: Path, fault: str) -> None:
    async with grounded_gateway(tmp_path, timeout_seconds=0.5) as (gateway, fakes, engine):
        engine.status = 503 if fault == "status" else 200
        engine.not_json, engine.oversized = fault == "not_json", fault == "oversized"
        engine.hang = fault == "hang"
        script_emulated(fakes, UNCITED)
        response = await gateway.http.post(gemini_path("openai-text"), json=searching())
        assert response.status_code == 200, response.text
        record = await gateway.record(response)
    body = response.json()
    assert engine.queries == [QUESTION]
    assert "groundingMetadata" not in body["candidates"][0]
    assert answer_text(body) == UNCITED
    assert response.headers["x-cometgate-dropped"] == "tools[0].googleSearch"
    assert "system" not in [m["role"] for m in fakes.openai.requests[-1]["messages"]]
    assert record.searches == 0


async def test_a_failed_search_leaves_a_stream_ungrounded(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        engine.status = 500
        script_emulated(fakes, UNCITED)
        response = await gateway.http.post(gemini_path("openai-text", stream=True),
                                           json=searching())
    assert response.status_code == 200
    chunks = stream_chunks(response.text)
    assert not any("groundingMetadata" in c.get("candidates", [{}])[0] for c in chunks)
    assert "".join(answer_text(c) for c in chunks if "candidates" in c) == UNCITED


# --- refusals --------------------------------------------------------------------------------


def refusal(response: Any) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    message = error["message"]
    assert isinstance(message, str)
    return message


async def test_without_a_backend_the_refusal_says_how_to_configure_one(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path, backend=False) as (gateway, fakes, _):
        message = refusal(await gateway.http.post(gemini_path("openai-text"),
                                                  json=searching()))
        assert fakes.openai.requests == []
    assert message.startswith(
        "tools[0].googleSearch is not supported by models/openai-text: none of its upstreams "
        "runs a web search and this gateway has no search backend; an operator can configure "
        "one: grounding: {search: {kind: searxng, base_url: http://searxng:8080}}")
    assert "Models that have it here: " in message and "anthropic-text" in message
    assert "openai-search" in message and "openai-text," not in message


async def test_a_model_with_grounding_off_refuses_it(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, _, engine):
        message = refusal(await gateway.http.post(gemini_path("openai-off"), json=searching()))
    assert message.startswith("tools[0].googleSearch is not supported by models/openai-off: "
                              "Google Search grounding is turned off for this model "
                              "(grounding: off).")
    assert engine.queries == []


async def test_a_native_only_model_without_a_searching_upstream_refuses_it(
        tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, _, engine):
        message = refusal(await gateway.http.post(gemini_path("openai-native-only"),
                                                  json=searching()))
    assert "(grounding: native), and none of its upstreams runs a web search." in message
    assert engine.queries == []


# --- native: the upstream's own search ------------------------------------------------------

ANSWER = "Köln liegt am Rhein. Die Domstadt zählt eine Million Einwohner."
QUERY = "Köln Einwohner"


async def test_anthropic_web_search_becomes_grounding_metadata(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.anthropic.replies.append(anthropic.Reply(text=ANSWER, search_query=QUERY))
        response = await gateway.http.post(gemini_path("anthropic-text"), json=searching())
        assert response.status_code == 200, response.text
        record = await gateway.record(response)
    assert engine.queries == []
    assert fakes.anthropic.searched == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    body = response.json()
    assert answer_text(body) == ANSWER
    metadata = metadata_of(body)
    assert metadata["webSearchQueries"] == [QUERY]
    assert metadata["groundingChunks"] == [
        {"web": {"uri": anthropic.SEARCH_PAGE, "title": anthropic.SEARCH_TITLE}}]
    assert_supports_point_into(ANSWER, metadata)
    assert [s["segment"]["text"] for s in metadata["groundingSupports"]] == [
        "Köln liegt am Rhein. ", "Die Domstadt zählt eine Million Einwohner."]
    assert record.searches == 1


async def test_a_streamed_anthropic_search(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, _):
        fakes.anthropic.replies.append(anthropic.Reply(text=ANSWER, search_query=QUERY))
        response = await gateway.http.post(gemini_path("anthropic-text", stream=True),
                                           json=searching())
    chunks = stream_chunks(response.text)
    answer = "".join(answer_text(c) for c in chunks if "candidates" in c)
    assert answer == ANSWER
    metadata = metadata_of(chunks[-1])
    assert metadata["webSearchQueries"] == [QUERY]
    assert_supports_point_into(answer, metadata)


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_search_model_citations_become_grounding_metadata(
        tmp_path: Path, stream: bool) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        fakes.openai.replies.append(openai.Reply(text=ANSWER))
        response = await gateway.http.post(gemini_path("openai-search", stream=stream),
                                           json=searching())
        assert response.status_code == 200, response.text
        record = await gateway.record(response)
    assert engine.queries == []
    assert fakes.openai.searched == [{}]
    last = stream_chunks(response.text)[-1] if stream else response.json()
    metadata = metadata_of(last)
    assert metadata["groundingChunks"] == [
        {"web": {"uri": openai.SEARCH_PAGE, "title": openai.SEARCH_TITLE}}]
    assert_supports_point_into(ANSWER, metadata)
    assert [s["segment"]["text"] for s in metadata["groundingSupports"]] == [
        "Köln liegt am Rhein.", "Die Domstadt zählt eine Million Einwohner."]
    assert record.searches == 1


async def test_a_responses_web_search_takes_the_same_road(tmp_path: Path) -> None:
    async with grounded_gateway(tmp_path) as (gateway, fakes, engine):
        script_emulated(fakes, CITING)
        response = await gateway.http.post("/v1/responses", json={
            "model": "openai-text", "input": QUESTION, "tools": [{"type": "web_search"}]})
    assert response.status_code == 200, response.text
    search, message = response.json()["output"]
    assert search["type"] == "web_search_call"
    assert search["action"] == {"type": "search", "query": QUESTION}
    assert engine.queries == [QUESTION]
    (text,) = message["content"]
    assert text["text"] == CITING
    assert [(CITING[a["start_index"]:a["end_index"]], a["url"]) for a in text["annotations"]] == [
        ("Köln liegt am Rhein und hat über eine Million Einwohner [1].", PAGES[0].url),
        ("Der Dom wurde 1248 begonnen [2].", PAGES[1].url)]
