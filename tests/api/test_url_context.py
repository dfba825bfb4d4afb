"""URL context through the gateway in process, with the three fake upstreams on real sockets
and a page server on a loopback port: the gateway reads the pages for the OpenAI and
Anthropic upstreams (which cannot), the model receives their text (the fake's log shows it),
the answer carries `urlContextMetadata` as Google writes it, the usage record counts and
prices the pages; a Gemini upstream gets the tool itself. The address guard of the default
configuration refuses loopback and metadata URLs without connecting; Google Maps grounding
is refused naming the models that have it; `GET models/{id}` lists how each model serves
each tool."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.grounding.address_guard import IPAddress
from cometgate.grounding.fetch import PageFetcher, Resolve
from cometgate.storage.database import open_database
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.api.bodies import error_of
from tests.contract.conftest import (
    Fakes,
    model_block,
    new_key,
    provider_block,
    running_fakes,
    settings_for,
)
from tests.contract.scenarios import received, script_text
from tests.fakes import openai_upstream as openai_fake
from tests.fakes.page_server import ARTICLE_FACT, ARTICLE_TITLE, NOTES, PageServer

UPSTREAM = {"anthropic": "claude-up", "openai": "gpt-up", "gemini": "gemini-up"}
SECRETS = {"ANTHROPIC_KEY": "sk-ant", "OPENAI_KEY": "sk-openai", "GEMINI_KEY": "gm-key"}
PAGE_PRICE = Decimal("5")  # USD per 1,000 page fetches
SUCCESS = "URL_RETRIEVAL_STATUS_SUCCESS"
UNSAFE = "URL_RETRIEVAL_STATUS_UNSAFE"


class Gateway:
    def __init__(self, http: httpx.AsyncClient, app: Any, settings: Any, fakes: Fakes,
                 pages: PageServer) -> None:
        self.http, self.app, self.settings, self.fakes, self.pages = (
            http, app, settings, fakes, pages)

    async def generate(self, model: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(f"/v1beta/models/{model}:generateContent",
                                    content=orjson.dumps(body))

    async def stream(self, model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.http.post(f"/v1beta/models/{model}:streamGenerateContent?alt=sse",
                                        content=orjson.dumps(body))
        assert response.status_code == 200, response.text
        return [orjson.loads(line[6:]) for line in response.text.split("\r\n\r\n")
                if line.startswith("data: ")]

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()


@asynccontextmanager
async def running(tmp_path: Path, fetch: dict[str, Any], *, page_port_allowed: bool = False,
                  names: dict[str, list[str]] | None = None) -> AsyncIterator[Gateway]:
    """`page_port_allowed`: the page server's port joins the allowed ones, so that what the
    guard refuses it refuses for the address alone. `names`: the DNS the fetcher sees."""
    pages = PageServer()
    await pages.start()
    if page_port_allowed:
        fetch = {**fetch, "ports": [80, 443, pages.port]}
    try:
        async with running_fakes() as fakes:
            kinds = ("anthropic", "openai", "gemini")
            providers = {kind: provider_block(kind, fakes.urls[kind], [f"{kind.upper()}_KEY"])
                         for kind in kinds}
            prices = {"input": 1, "output": 2, "per_1k_page_fetches": str(PAGE_PRICE)}
            models = {f"{kind}-alias": model_block([(kind, UPSTREAM[kind])], prices=prices)
                      for kind in kinds}
            models["openai-then-claude"] = model_block(
                [("openai", UPSTREAM["openai"]), ("anthropic", UPSTREAM["anthropic"])])
            config = {"routing": {"retries": 0}, "providers": providers, "models": models,
                      "grounding": {"fetch": fetch}}
            settings = settings_for(tmp_path, config, SECRETS)
            key = await new_key(settings)
            fetcher = None if names is None else PageFetcher(settings.fetch,
                                                             resolve=resolver(names))
            app = create_app(settings, page_fetcher=fetcher)
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                headers={"x-goog-api-key": key, "content-type": "application/json"},
                timeout=30.0,
            ) as http:
                yield Gateway(http, app, settings, fakes, pages)
    finally:
        await pages.aclose()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Private addresses allowed: the page server is on loopback."""
    async with running(tmp_path, {"allow_private": True, "timeout": 2.0}) as running_gateway:
        yield running_gateway


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The default address guard (the page server's port allowed)."""
    async with running(tmp_path, {}, page_port_allowed=True) as running_gateway:
        yield running_gateway


def resolver(names: dict[str, list[str]]) -> Resolve:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in names:
            raise OSError(f"no such name: {host}")
        return [ipaddress.ip_address(address) for address in names[host]]

    return resolve


def asking(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}],
            "tools": [{"url_context": {}}]}


def metadata(*entries: tuple[str, str]) -> dict[str, Any]:
    return {"urlMetadata": [{"retrievedUrl": url, "urlRetrievalStatus": status}
                            for url, status in entries]}


def system_text(kind: str, fakes: Fakes) -> str:
    body = received(kind, fakes)
    if kind == "anthropic":
        system = body.get("system") or []
        return system if isinstance(system, str) else "".join(b["text"] for b in system)
    return "".join(m["content"] if isinstance(m["content"], str)
                   else "".join(p.get("text", "") for p in m["content"])
                   for m in body["messages"] if m["role"] in ("system", "developer"))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_the_gateway_reads_the_pages_and_the_model_receives_their_text(
    gateway: Gateway, kind: str,
) -> None:
    article, notes = gateway.pages.url("/article"), gateway.pages.url("/notes.txt")
    script_text(kind, gateway.fakes, "Every 76 years.")
    response = await gateway.generate(
        f"{kind}-alias", asking(f"How often does it return? See {article} and {notes}."))
    assert response.status_code == 200, response.text
    candidate = response.json()["candidates"][0]
    assert candidate["content"]["parts"] == [{"text": "Every 76 years."}]
    assert candidate["urlContextMetadata"] == metadata((article, SUCCESS), (notes, SUCCESS))
    system = system_text(kind, gateway.fakes)
    assert ARTICLE_FACT in system and ARTICLE_TITLE in system and NOTES in system
    assert "SECRET_SCRIPT" not in system
    assert sorted(path for path, _ in gateway.pages.requests) == ["/article", "/notes.txt"]
    (record,) = await gateway.records()
    assert record.fetched_pages == 2
    tokens = record.prompt_tokens * 1 + record.output_tokens * 2
    assert record.cost_usd == (Decimal(tokens) / 1_000_000 + 2 * PAGE_PRICE / 1000)


async def test_failover_reuses_the_pages_the_first_attempt_fetched(gateway: Gateway) -> None:
    article = gateway.pages.url("/article")
    gateway.fakes.openai.replies.append(openai_fake.Reply(status=503, error_type="server_error"))
    script_text("anthropic", gateway.fakes, "From the second upstream.")
    response = await gateway.generate("openai-then-claude", asking(f"Read {article}"))
    assert response.status_code == 200, response.text
    candidate = response.json()["candidates"][0]
    assert candidate["urlContextMetadata"] == metadata((article, SUCCESS))
    assert len(gateway.fakes.openai.requests) == 1
    assert ARTICLE_FACT in system_text("openai", gateway.fakes)
    assert ARTICLE_FACT in system_text("anthropic", gateway.fakes)
    assert gateway.pages.requests == [("/article", f"127.0.0.1:{gateway.pages.port}")]


async def test_a_stream_carries_the_metadata_on_its_final_event(gateway: Gateway) -> None:
    article = gateway.pages.url("/article")
    script_text("openai", gateway.fakes, "Every seventy-six years.", chunks=3)
    events = await gateway.stream("openai-alias", asking(f"Read {article}"))
    *earlier, last = events
    assert "".join(p["text"] for e in events for c in e.get("candidates", [])
                   for p in c["content"].get("parts", [])) == "Every seventy-six years."
    final = last["candidates"][0]
    assert final["finishReason"] == "STOP"
    assert final["urlContextMetadata"] == metadata((article, SUCCESS))
    assert not any("urlContextMetadata" in c for e in earlier for c in e.get("candidates", []))
    assert ARTICLE_FACT in system_text("openai", gateway.fakes)
    (record,) = await gateway.records()
    assert record.fetched_pages == 1 and record.stream


async def test_a_gemini_upstream_gets_the_tool_and_the_gateway_fetches_nothing(
    gateway: Gateway,
) -> None:
    article = gateway.pages.url("/article")
    script_text("gemini", gateway.fakes, "From Google.")
    response = await gateway.generate("gemini-alias", asking(f"Read {article}"))
    assert response.status_code == 200, response.text
    assert received("gemini", gateway.fakes)["tools"] == [{"url_context": {}}]
    assert gateway.pages.connections == 0


async def test_pages_that_cannot_be_read_are_reported_and_the_answer_still_comes(
    gateway: Gateway,
) -> None:
    pdf, slow = gateway.pages.url("/doc.pdf"), gateway.pages.url("/slow")
    script_text("openai", gateway.fakes, "No pages.")
    response = await gateway.generate("openai-alias", asking(f"Compare {pdf} with {slow}"))
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["urlContextMetadata"] == metadata(
        (pdf, "URL_RETRIEVAL_STATUS_ERROR"), (slow, "URL_RETRIEVAL_STATUS_ERROR"))
    system = system_text("openai", gateway.fakes)
    assert f"The page at {slow} could not be read: no answer within 2 s." in system
    (record,) = await gateway.records()
    assert record.fetched_pages == 0


async def test_the_default_guard_refuses_inward_urls_without_connecting(
    guarded: Gateway,
) -> None:
    urls = [guarded.pages.url("/article"), f"http://localhost:{guarded.pages.port}/article",
            "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
            f"http://[::1]:{guarded.pages.port}/article"]
    script_text("openai", guarded.fakes, "Nothing to read.")
    response = await guarded.generate("openai-alias", asking("Read " + " ".join(urls)))
    assert response.status_code == 200, response.text
    assert response.json()["candidates"][0]["urlContextMetadata"] == metadata(
        *((url, UNSAFE) for url in urls))
    assert guarded.pages.connections == 0
    assert "could not be read: 127.0.0.1 is a loopback address" in \
        system_text("openai", guarded.fakes)


async def test_a_name_resolving_inward_is_refused_without_connecting(tmp_path: Path) -> None:
    rebinding = {"comet-news.example": ["127.0.0.1"], "cdn.example": ["93.184.216.34", "10.0.0.9"]}
    async with running(tmp_path, {}, page_port_allowed=True, names=rebinding) as dns:
        urls = [f"http://comet-news.example:{dns.pages.port}/article", "https://cdn.example/x"]
        script_text("openai", dns.fakes, "Nothing to read.")
        response = await dns.generate("openai-alias", asking(f"Read {urls[0]} and {urls[1]}"))
        assert response.status_code == 200, response.text
        assert response.json()["candidates"][0]["urlContextMetadata"] == metadata(
            *((url, UNSAFE) for url in urls))
        assert dns.pages.connections == 0
        system = system_text("openai", dns.fakes)
        assert f"{urls[0]} could not be read: 127.0.0.1 is a loopback address" in system
        assert f"{urls[1]} could not be read: 10.0.0.9 is not a public address" in system


async def test_with_fetching_off_url_context_is_refused_naming_the_models_that_have_it(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, {"enabled": False}) as off:
        response = await off.generate("openai-alias", asking("Read https://example.com/"))
        assert response.status_code == 400
        assert error_of(response.content)["message"] == (
            "tools.urlContext is not supported by models/openai-alias: URL context needs an "
            "upstream that reads URLs itself (Google's Gemini API) or the gateway's page "
            "fetching (grounding.fetch), and this model has neither. Models that have it "
            "here: gemini-alias.")
        assert off.fakes.openai.requests == []


async def test_google_maps_is_refused_naming_the_gemini_models(gateway: Gateway) -> None:
    body = {"contents": [{"parts": [{"text": "Cafes near me"}]}], "tools": [{"googleMaps": {}}]}
    response = await gateway.generate("anthropic-alias", body)
    assert response.status_code == 400
    error = error_of(response.content)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == (
        "tools.googleMaps is not supported by models/anthropic-alias: Google Maps grounding is "
        "served only by Google's Gemini API. Models that have it here: gemini-alias.")
    assert gateway.fakes.anthropic.requests == []
    script_text("gemini", gateway.fakes, "Cafe Comet.")
    assert (await gateway.generate("gemini-alias", body)).status_code == 200


async def test_models_list_how_they_serve_each_builtin_tool(gateway: Gateway) -> None:
    openai = (await gateway.http.get("/v1beta/models/openai-alias")).json()
    assert openai["cometgate"] == {"tools": {
        "googleSearch": None, "urlContext": "emulated", "codeExecution": None,
        "googleMaps": None, "imageOutput": None}}
    anthropic = (await gateway.http.get("/v1beta/models/anthropic-alias")).json()
    assert anthropic["cometgate"]["tools"]["googleSearch"] == "native"
    gemini = (await gateway.http.get("/v1/models/gemini-alias")).json()
    assert set(gemini["cometgate"]["tools"].values()) == {"native"}
    listed = (await gateway.http.get("/v1beta/models")).json()["models"]
    assert {m["name"]: m["cometgate"]["tools"]["urlContext"] for m in listed} == {
        "models/anthropic-alias": "emulated", "models/openai-alias": "emulated",
        "models/gemini-alias": "native", "models/openai-then-claude": "emulated"}


async def test_with_fetching_off_models_list_url_context_as_unserved(tmp_path: Path) -> None:
    async with running(tmp_path, {"enabled": False}) as off:
        tools = (await off.http.get("/v1beta/models/openai-alias")).json()["cometgate"]["tools"]
        assert tools["urlContext"] is None
