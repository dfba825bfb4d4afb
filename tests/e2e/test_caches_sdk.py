"""google-genai's `client.caches` against a live `cometgate serve`: create, get, list, update
and delete, and `generate_content(config=GenerateContentConfig(cached_content=name))` on every
upstream kind — the three fakes (each seen receiving its own provider's cache markers) and the
local model (llama.cpp's KV prefix reused) — with `cached_content_token_count` reported from
what the upstream served from its cache."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from google import genai
from google.genai import errors, types

from tests.contract.conftest import KINDS, Fakes
from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.fake_upstreams_live import serve_before_fakes

SYSTEM = "You answer questions about the attached handbook in one short sentence."
HANDBOOK = ("The handbook says the north gate opens at seven and closes at nine, the river "
            "path is closed in winter, and visitors sign in at the lodge.")
PREFIX_WORDS = len(SYSTEM.split()) + len(HANDBOOK.split())


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    clients: list[genai.Client]


def client_of(gateway: LiveGateway, keep: list[genai.Client]) -> genai.Client:
    """A client kept alive by `keep`: a collected Client closes its HTTP pool."""
    client = genai.Client(api_key=gateway.key, http_options=types.HttpOptions(
        base_url=gateway.base_url, api_version="v1beta", timeout=120_000))
    keep.append(client)
    return client


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    for running in serve_before_fakes(tmp_path_factory, pytestconfig, "caches"):
        yield Live(running.gateway, running.fakes, [])


def create(client: genai.Client, model: str) -> types.CachedContent:
    return client.caches.create(model=model, config=types.CreateCachedContentConfig(
        display_name="handbook", system_instruction=SYSTEM,
        contents=[types.Content(role="user", parts=[types.Part(text=HANDBOOK)])], ttl="300s"))


def ask(client: genai.Client, model: str, cache: str, question: str,
        **config: object) -> types.GenerateContentResponse:
    return client.models.generate_content(
        model=model, contents=question,
        config=types.GenerateContentConfig(cached_content=cache, **config))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_the_cache_lifecycle_through_the_sdk(live: Live, kind: str) -> None:
    client = client_of(live.gateway, live.clients)
    cache = create(client, f"{kind}-text")
    assert cache.name is not None and cache.name.startswith("cachedContents/")
    assert cache.model == f"models/{kind}-text"
    assert cache.display_name == "handbook"
    assert cache.usage_metadata is not None and cache.usage_metadata.total_token_count
    got = client.caches.get(name=cache.name)
    assert (got.name, got.expire_time) == (cache.name, cache.expire_time)
    assert cache.name in [c.name for c in client.caches.list(config={"page_size": 1})]
    updated = client.caches.update(name=cache.name,
                                   config=types.UpdateCachedContentConfig(ttl="7200s"))
    assert updated.expire_time is not None and cache.expire_time is not None
    assert updated.expire_time > cache.expire_time
    client.caches.delete(name=cache.name)
    with pytest.raises(errors.ClientError) as caught:
        client.caches.get(name=cache.name)
    assert caught.value.code == 403
    assert caught.value.status == "PERMISSION_DENIED"


def test_openai_upstreams_see_the_prompt_cache_key(live: Live) -> None:
    client = client_of(live.gateway, live.clients)
    cache = create(client, "openai-text")
    assert cache.name is not None
    ask(client, "openai-text", cache.name, "When does it open?")
    second = ask(client, "openai-text", cache.name, "When does it close?")
    sent = live.fakes.openai.requests[-1]
    assert sent["prompt_cache_key"] == "cometgate-cache-" + cache.name.split("/")[1]
    assert [m["content"] for m in sent["messages"]] == [SYSTEM, HANDBOOK, "When does it close?"]
    assert second.usage_metadata is not None
    assert second.usage_metadata.cached_content_token_count == PREFIX_WORDS


def test_anthropic_upstreams_see_cache_breakpoints(live: Live) -> None:
    client = client_of(live.gateway, live.clients)
    cache = create(client, "anthropic-text")
    assert cache.name is not None
    first = ask(client, "anthropic-text", cache.name, "When does it open?")
    sent = live.fakes.anthropic.requests[-1]
    assert sent["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert sent["messages"][0]["content"][0] == {
        "type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}
    assert first.usage_metadata is not None
    assert first.usage_metadata.cached_content_token_count is None  # written, not yet read
    chunks = list(client.models.generate_content_stream(
        model="anthropic-text", contents="Who signs in?",
        config=types.GenerateContentConfig(cached_content=cache.name)))
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.cached_content_token_count == PREFIX_WORDS


def test_gemini_upstreams_hold_a_copy_of_the_cache(live: Live) -> None:
    client = client_of(live.gateway, live.clients)
    gemini = live.fakes.gemini
    cache = create(client, "gemini-text")
    assert cache.name is not None
    for question in ("When does it open?", "When does it close?"):
        answer = ask(client, "gemini-text", cache.name, question)
        assert answer.usage_metadata is not None
        assert answer.usage_metadata.cached_content_token_count == PREFIX_WORDS
    created = [seen for seen in gemini.requests if seen.path == "/v1beta/cachedContents"]
    assert len(created) == 1
    upstream_name = next(iter(gemini.caches))
    generated = [orjson.loads(seen.body) for seen in gemini.requests[-2:]]
    assert [g["cachedContent"] for g in generated] == [upstream_name] * 2
    client.caches.delete(name=cache.name)
    assert upstream_name not in gemini.caches  # deleted upstream with it


def test_bad_uses_hear_googles_errors(live: Live) -> None:
    client = client_of(live.gateway, live.clients)
    cache = create(client, "openai-text")
    assert cache.name is not None
    with pytest.raises(errors.ClientError) as other_model:
        ask(client, "anthropic-text", cache.name, "When does it open?")
    assert other_model.value.code == 400
    assert other_model.value.message is not None
    assert "has to be the same" in other_model.value.message
    with pytest.raises(errors.ClientError) as missing:
        ask(client, "openai-text", "cachedContents/nosuchcache", "When?")
    assert (missing.value.code, missing.value.status) == (403, "PERMISSION_DENIED")
    with pytest.raises(errors.ClientError) as own_system:
        ask(client, "openai-text", cache.name, "When?", system_instruction="Be brief.")
    assert own_system.value.code == 400


@pytest.mark.model
def test_the_local_model_reuses_its_kv_prefix(gateway: LiveGateway) -> None:
    keep: list[genai.Client] = []
    client = client_of(gateway, keep)
    cache = create(client, MODEL)
    assert cache.name is not None and cache.usage_metadata is not None
    size = cache.usage_metadata.total_token_count
    assert size is not None and size > PREFIX_WORDS  # the model's own tokens, template and all
    config = {"max_output_tokens": 4, "temperature": 0.0}
    ask(client, MODEL, cache.name, "When does the gate open?", **config)
    second = ask(client, MODEL, cache.name, "Who signs in at the lodge?", **config)
    usage = second.usage_metadata
    assert usage is not None and usage.prompt_token_count is not None
    served = usage.cached_content_token_count
    # llama.cpp evaluated the shared prefix once: the second prompt takes at least the cached
    # turns from the KV cache, and never its own new question.
    assert served is not None and size - 8 <= served < usage.prompt_token_count
    client.caches.delete(name=cache.name)
