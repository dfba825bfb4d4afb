"""google-genai's `types.Tool(google_search=types.GoogleSearch())` against a live `cometgate
serve`, whole and streamed: emulated through a SearXNG-shaped search server for an
OpenAI-compatible fake without a search and for the bundled local model (which cannot call
tools: its query is the prompt); native through the Anthropic and OpenAI search shapes of the
fake upstreams. Each answer's `grounding_metadata` is read through the SDK's own types; every
segment's text is the answer's text at its offsets (UTF-8 bytes, as Google counts them), and
every chunk index names a chunk."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google import genai
from google.genai import types

from tests.contract.conftest import UPSTREAM_MODEL, Fakes, provider_url
from tests.e2e.conftest import MODEL, LiveGateway, start_gateway
from tests.e2e.fake_upstreams_live import FakesThread, records_of
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import openai_upstream as openai
from tests.fakes.searxng import FakeSearch, Page

PAGES = (
    Page("https://example.org/eiffel", "Eiffel Tower facts",
         "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. The tower is "
         "330 metres tall and was finished in 1889."),
    Page("https://example.org/paris", "Paris travel guide",
         "Paris is the capital of France, on the river Seine, famous for its museums."),
)
QUESTION = "How tall is the Eiffel Tower in Paris?"
CITING = "The Eiffel Tower is 330 metres tall [1]. Paris is the capital of France [2]."
NATIVE = "Köln liegt am Rhein. Die Domstadt zählt eine Million Einwohner."


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    engine: FakeSearch
    client: genai.Client


def config_text(fakes: Fakes, search_url: str) -> str:
    def remote(kind: str, name: str, extra: str = "") -> str:
        return (f"  {name}: {{kind: {kind}, base_url: '{provider_url(kind, fakes.urls[kind])}'"
                f", api_key: 'env:CG_E2E_SEARCH_KEY'{extra}}}")

    def model(name: str, provider: str, upstream: str) -> str:
        return (f"  {name}: {{provider: {provider}, upstream_model: {upstream}, "
                "input_token_limit: 4096, output_token_limit: 256}")

    return "\n".join([
        "routing: {retries: 0}",
        "grounding:",
        f"  search: {{kind: searxng, base_url: '{search_url}', timeout_seconds: 10}}",
        "providers:",
        "  local: {kind: local, model_path: bundled, threads: 2, context_size: 2048,"
        " repeat_penalty: 1.1}",
        remote("openai", "openai"), remote("anthropic", "anthropic"),
        remote("openai", "openai-search", ", web_search: true"),
        "models:",
        f"  {MODEL}: {{provider: local, input_token_limit: 2048, output_token_limit: 256,"
        " default_max_output_tokens: 48, temperature: 0.0}",
        model("openai-text", "openai", UPSTREAM_MODEL["openai"]),
        model("anthropic-text", "anthropic", UPSTREAM_MODEL["anthropic"]),
        model("openai-search", "openai-search", "gpt-search-up"),
    ]) + "\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    engine = FakeSearch(pages=PAGES)
    thread = FakesThread(engine.app)
    with thread as fakes, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CG_E2E_SEARCH_KEY", "secret-search")
        root = tmp_path_factory.mktemp("search-grounding")
        (search_url,) = thread.extra_urls
        for gateway in start_gateway(root, pytestconfig, config_text(fakes, search_url)):
            client = genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
                base_url=gateway.base_url, api_version="v1beta", timeout=120_000))
            yield Live(gateway, fakes, engine, client)


@pytest.fixture(autouse=True)
def clean(live: Live) -> None:
    live.fakes.openai.replies.clear()
    live.fakes.anthropic.replies.clear()
    live.engine.queries.clear()


SEARCH = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])


def assert_grounded(answer: str, metadata: types.GroundingMetadata | None) -> None:
    assert metadata is not None
    chunks = metadata.grounding_chunks or []
    encoded = answer.encode()
    assert metadata.grounding_supports
    for support in metadata.grounding_supports:
        segment = support.segment
        assert segment is not None and segment.end_index is not None
        start = segment.start_index or 0  # proto3 leaves a 0 start out
        assert encoded[start:segment.end_index].decode() == segment.text
        indices = support.grounding_chunk_indices or []
        assert indices and all(0 <= i < len(chunks) for i in indices)
        assert len(support.confidence_scores or []) == len(indices)
    for chunk in chunks:
        assert chunk.web is not None and chunk.web.uri


def grounding(response: types.GenerateContentResponse) -> types.GroundingMetadata | None:
    assert response.candidates
    return response.candidates[0].grounding_metadata


def streamed(live: Live, model: str) -> tuple[str, types.GroundingMetadata | None, int]:
    """The answer's text, the grounding of its last chunk, and how many chunks had one."""
    text, last, grounded = "", None, 0
    for chunk in live.client.models.generate_content_stream(
            model=model, contents=QUESTION, config=SEARCH):
        if not chunk.candidates:
            continue
        candidate = chunk.candidates[0]
        text += "".join(p.text or "" for p in (candidate.content and candidate.content.parts)
                        or [])
        if candidate.grounding_metadata is not None:
            last, grounded = candidate.grounding_metadata, grounded + 1
    return text, last, grounded


def script_emulated(live: Live, **reply: Any) -> None:
    """The model's query plan (a web_search call), then its answer."""
    live.fakes.openai.replies += [
        openai.Reply(text=None, finish_reason="tool_calls", tool_calls=[
            {"name": "web_search", "arguments": {"queries": [QUESTION]}}]),
        openai.Reply(text=CITING, **reply)]


@pytest.mark.parametrize("stream", [False, True])
def test_emulated_search_on_an_openai_compatible_upstream(live: Live, stream: bool) -> None:
    script_emulated(live, chunks=4)
    if stream:
        text, metadata, grounded = streamed(live, "openai-text")
        assert grounded == 1
    else:
        response = live.client.models.generate_content(
            model="openai-text", contents=QUESTION, config=SEARCH)
        text, metadata = response.text or "", grounding(response)
    assert text == CITING
    assert live.engine.queries == [QUESTION]
    assert_grounded(text, metadata)
    assert metadata is not None and metadata.web_search_queries == [QUESTION]
    assert [c.web.uri for c in metadata.grounding_chunks or [] if c.web] == [
        p.url for p in PAGES]
    assert metadata.search_entry_point is not None
    assert "How tall is the Eiffel Tower in Paris?" in (
        metadata.search_entry_point.rendered_content or "")


@pytest.mark.parametrize("stream", [False, True])
def test_emulated_search_on_the_local_model(live: Live, stream: bool) -> None:
    if stream:
        text, metadata, grounded = streamed(live, MODEL)
        assert grounded == 1
    else:
        response = live.client.models.generate_content(model=MODEL, contents=QUESTION,
                                                       config=SEARCH)
        text, metadata = response.text or "", grounding(response)
    assert text.strip()
    assert live.engine.queries == [QUESTION]  # the prompt is the query: SmolLM2 calls no tool
    assert_grounded(text, metadata)
    assert metadata is not None and metadata.web_search_queries == [QUESTION]


def test_the_usage_record_counts_the_search(live: Live) -> None:
    script_emulated(live)
    response = live.client.models.generate_content(
        model="openai-text", contents=QUESTION, config=SEARCH)
    assert grounding(response) is not None
    assert response.sdk_http_response is not None and response.sdk_http_response.headers
    (record,) = records_of(live.gateway, response.sdk_http_response.headers["x-request-id"])
    assert record["searches"] == "1"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_native_search(live: Live, stream: bool) -> None:
    live.fakes.anthropic.replies.append(anthropic.Reply(text=NATIVE, search_query="Köln"))
    if stream:
        text, metadata, _ = streamed(live, "anthropic-text")
    else:
        response = live.client.models.generate_content(
            model="anthropic-text", contents=QUESTION, config=SEARCH)
        text, metadata = response.text or "", grounding(response)
    assert text == NATIVE and live.engine.queries == []
    assert_grounded(text, metadata)
    assert metadata is not None and metadata.web_search_queries == ["Köln"]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_native_search(live: Live, stream: bool) -> None:
    live.fakes.openai.replies.append(openai.Reply(text=NATIVE))
    if stream:
        text, metadata, _ = streamed(live, "openai-search")
    else:
        response = live.client.models.generate_content(
            model="openai-search", contents=QUESTION, config=SEARCH)
        text, metadata = response.text or "", grounding(response)
    assert text == NATIVE and live.engine.queries == []
    assert_grounded(text, metadata)
    assert metadata is not None
    assert [c.web.uri for c in metadata.grounding_chunks or [] if c.web] == [openai.SEARCH_PAGE]
