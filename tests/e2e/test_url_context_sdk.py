"""google-genai with `types.Tool(url_context=types.UrlContext())` against a live `cometgate
serve`: on an OpenAI-compatible fake and on the local model, the gateway reads a page from a
web server on a loopback port (`allow_private: true` in this gateway's config) and gives it
to the model; the SDK parses `url_context_metadata`, on the answer and on a stream's final
chunk; the usage record counts the page. A second gateway on the default guard refuses
loopback URLs — by address and by a name resolving to loopback — without connecting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google import genai
from google.genai import types

from tests.contract.conftest import Fakes, provider_url
from tests.contract.scenarios import script_text
from tests.e2e.conftest import LiveGateway, start_gateway
from tests.e2e.fake_upstreams_live import FakesThread, records_of
from tests.fakes.page_server import ARTICLE_FACT, ARTICLE_TITLE, PageServer, PageServerThread

SUCCESS = types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_SUCCESS
UNSAFE = types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_UNSAFE
URL_CONTEXT = types.GenerateContentConfig(tools=[types.Tool(url_context=types.UrlContext())],
                                          max_output_tokens=16, temperature=0.0, seed=7)


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    pages: PageServer
    clients: list[genai.Client]

    def client(self) -> genai.Client:
        client = genai.Client(api_key=self.gateway.key, http_options=types.HttpOptions(
            base_url=self.gateway.base_url, api_version="v1beta", timeout=60_000))
        self.clients.append(client)
        return client


def config(fakes: Fakes, fetch: str, *, local: bool) -> str:
    lines = [
        "routing: {retries: 0}",
        "providers:",
        f"  openai: {{kind: openai, base_url: '{provider_url('openai', fakes.urls['openai'])}'}}",
    ]
    if local:
        lines.append("  local: {kind: local, model_path: bundled, threads: 2, "
                     "context_size: 2048}")
    lines += ["models:",
              "  openai-text: {provider: openai, upstream_model: gpt-up, "
              "input_token_limit: 100000, output_token_limit: 8192, "
              "prices: {per_1k_page_fetches: 4}}"]
    if local:
        lines.append("  smollm2-135m-instruct: {provider: local, input_token_limit: 2048, "
                     "output_token_limit: 256}")
    lines.append(f"grounding: {{fetch: {fetch}}}")
    return "\n".join(lines) + "\n"


def serving(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, name: str,
            fetch: str, *, local: bool) -> Iterator[Live]:
    with FakesThread() as fakes, PageServerThread() as pages:
        text = config(fakes, fetch.replace("PAGE_PORT", str(pages.port)), local=local)
        for gateway in start_gateway(tmp_path_factory.mktemp(name), pytestconfig, text):
            yield Live(gateway, fakes, pages, [])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
         ) -> Iterator[Live]:
    yield from serving(tmp_path_factory, pytestconfig, "urlctx", "{allow_private: true}",
                       local=True)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
            ) -> Iterator[Live]:
    # The page server's port is allowed, so what is refused is refused for its address.
    yield from serving(tmp_path_factory, pytestconfig, "urlguard",
                       "{ports: [80, 443, PAGE_PORT]}", local=False)


def openai_system_text(fakes: Fakes) -> str:
    messages = fakes.openai.requests[-1]["messages"]
    return "".join(m["content"] for m in messages if m["role"] in ("system", "developer")
                   and isinstance(m["content"], str))


def test_url_context_on_an_openai_compatible_upstream(live: Live) -> None:
    article = live.pages.url("/article")
    script_text("openai", live.fakes, "It returns every 76 years.")
    response = live.client().models.generate_content(
        model="openai-text", contents=f"How often does the comet return? {article}",
        config=URL_CONTEXT)
    assert response.text == "It returns every 76 years."
    assert response.candidates and response.candidates[0].url_context_metadata
    (entry,) = response.candidates[0].url_context_metadata.url_metadata or []
    assert (entry.retrieved_url, entry.url_retrieval_status) == (article, SUCCESS)
    system = openai_system_text(live.fakes)
    assert ARTICLE_FACT in system and ARTICLE_TITLE in system and "SECRET_SCRIPT" not in system
    headers = response.sdk_http_response.headers if response.sdk_http_response else None
    assert headers is not None
    (record,) = records_of(live.gateway, headers["x-request-id"])
    assert record["fetched_pages"] == "1"


def test_url_context_streams_its_metadata_on_the_final_chunk(live: Live) -> None:
    notes = live.pages.url("/notes.txt")
    script_text("openai", live.fakes, "Away from the Sun.", chunks=3)
    chunks = list(live.client().models.generate_content_stream(
        model="openai-text", contents=f"Where does the tail point? {notes}", config=URL_CONTEXT))
    assert "".join(c.text or "" for c in chunks) == "Away from the Sun."
    *earlier, last = chunks
    assert last.candidates and last.candidates[0].url_context_metadata
    (entry,) = last.candidates[0].url_context_metadata.url_metadata or []
    assert (entry.retrieved_url, entry.url_retrieval_status) == (notes, SUCCESS)
    assert not any(c.candidates and c.candidates[0].url_context_metadata for c in earlier)


@pytest.mark.model
def test_url_context_on_the_local_model(live: Live) -> None:
    """The page reaches the local model: its prompt is the question plus the page's text
    (the prompt count grows by the page), and the metadata says it was read."""
    article = live.pages.url("/article")
    client = live.client()
    question = f"Summarise {article}"
    plain = client.models.generate_content(
        model="smollm2-135m-instruct", contents=question,
        config=types.GenerateContentConfig(max_output_tokens=16, temperature=0.0, seed=7))
    read = client.models.generate_content(model="smollm2-135m-instruct", contents=question,
                                          config=URL_CONTEXT)
    assert read.candidates and read.candidates[0].url_context_metadata
    (entry,) = read.candidates[0].url_context_metadata.url_metadata or []
    assert (entry.retrieved_url, entry.url_retrieval_status) == (article, SUCCESS)
    assert plain.usage_metadata and read.usage_metadata
    assert plain.usage_metadata.prompt_token_count and read.usage_metadata.prompt_token_count
    # The article's visible text alone is about forty tokens.
    assert read.usage_metadata.prompt_token_count > plain.usage_metadata.prompt_token_count + 30
    chunks = list(client.models.generate_content_stream(
        model="smollm2-135m-instruct", contents=question, config=URL_CONTEXT))
    last = chunks[-1]
    assert last.candidates and last.candidates[0].url_context_metadata
    assert last.candidates[0].finish_reason is not None


def test_the_default_guard_refuses_loopback_without_connecting(guarded: Live) -> None:
    port = guarded.pages.port
    urls = [guarded.pages.url("/article"), f"http://localhost:{port}/article",
            f"http://[::1]:{port}/article", "http://169.254.169.254/latest/meta-data/"]
    script_text("openai", guarded.fakes, "I could not read them.")
    response = guarded.client().models.generate_content(
        model="openai-text", contents="Read " + " and ".join(urls), config=URL_CONTEXT)
    assert response.text == "I could not read them."
    assert response.candidates and response.candidates[0].url_context_metadata
    entries = response.candidates[0].url_context_metadata.url_metadata or []
    assert [(e.retrieved_url, e.url_retrieval_status) for e in entries] == \
        [(url, UNSAFE) for url in urls]
    assert guarded.pages.connections == 0
    assert ARTICLE_FACT not in openai_system_text(guarded.fakes)
