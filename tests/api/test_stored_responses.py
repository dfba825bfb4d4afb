"""Stored responses through the app: `store`, `previous_response_id` on an OpenAI-compatible
and an Anthropic upstream, GET/DELETE/input_items, key scoping, storage turned off for a key
or the gateway, and reasoning state sealed into `encrypted_content` that the Anthropic fake
checks when it comes back (it refuses a tool-use continuation without its signed thinking)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types.responses import Response

from cometgate.app import create_app
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions
from cometgate.providers.anthropic_upstream import AnthropicUpstream
from cometgate.providers.base import Provider
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.providers.timeouts import Timeouts
from cometgate.settings import OpenAIProviderSettings, Settings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.anthropic_upstream import Reply as ClaudeReply
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.openai_upstream import Reply as OpenAIReply

CONFIG = {
    "routing": {"retries": 0},
    "providers": {
        "fake": {"kind": "openai", "base_url": "http://fake-upstream/v1"},
        "claude": {"kind": "anthropic", "base_url": "http://fake-anthropic",
                   "api_key": "env:CLAUDE_KEY"},
    },
    "models": {
        "gpt-fake": {"provider": "fake", "input_token_limit": 8192,
                     "output_token_limit": 4096},
        "claude-think": {"provider": "claude", "input_token_limit": 200000,
                         "output_token_limit": 8192,
                         "thinking": {"style": "budget", "budget_min": 1024,
                                      "budget_max": 24576}},
    },
}
WEATHER = {"type": "function", "name": "weather", "description": "Weather now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
NOT_FOUND_TYPE = "invalid_request_error"


class Gateway:
    def __init__(self, app: Any, keys: dict[str, str], openai: FakeOpenAIUpstream,
                 claude: FakeAnthropicUpstream) -> None:
        self.app, self.keys, self.openai, self.claude = app, keys, openai, claude

    def http(self, key: str = "a") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://gateway",
                                 headers={"authorization": f"Bearer {self.keys[key]}"})

    async def create(self, key: str = "a", **body: Any) -> dict[str, Any]:
        async with self.http(key) as http:
            response = await http.post("/v1/responses", json={"model": "gpt-fake", **body})
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        Response.model_validate(document)  # the SDK's own type parses it
        return document


Opener = Callable[..., Any]


def _settings(tmp_path: Path, conversations: dict[str, Any] | None) -> Settings:
    config = {**CONFIG, "storage": {"conversations": conversations}} if conversations else CONFIG
    path = tmp_path / "cometgate.yaml"
    path.write_bytes(orjson.dumps(config))
    return load_settings(path, data_dir=tmp_path / "data",
                         env={"HOME": str(tmp_path), "CLAUDE_KEY": "claude-secret"})


def _providers(settings: Settings, openai: FakeOpenAIUpstream,
               claude: FakeAnthropicUpstream) -> dict[str, Provider]:
    spec = settings.provider("fake")
    assert isinstance(spec, OpenAIProviderSettings)
    return {
        "fake": http_provider("fake", base_url=spec.base_url, options=openai_options(spec),
                              timeouts=spec.timeouts, client=httpx.AsyncClient(
                                  transport=httpx.ASGITransport(app=openai.app))),
        "claude": AnthropicUpstream(
            "claude", base_url="http://fake-anthropic", api_key=None,
            options=AnthropicOptions(version="2023-06-01", default_max_tokens=4096),
            timeouts=Timeouts(),
            client=httpx.AsyncClient(transport=httpx.ASGITransport(app=claude.app))),
    }


async def _open(tmp_path: Path, conversations: dict[str, Any] | None = None
                ) -> AsyncIterator[Gateway]:
    settings = _settings(tmp_path, conversations)
    async with await open_database(settings.database_url) as database:
        repository = KeyRepository(database)
        keys = {name: (await repository.create(name))[1] for name in ("a", "b")}
        keys["quiet"] = (await repository.create("quiet", store_conversations=False))[1]
    openai, claude = FakeOpenAIUpstream(), FakeAnthropicUpstream()
    app = create_app(settings, providers=_providers(settings, openai, claude))
    async with app.router.lifespan_context(app):
        yield Gateway(app, keys, openai, claude)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async for opened in _open(tmp_path):
        yield opened


def _not_found(response: httpx.Response, response_id: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {"error": {
        "message": f"Response with id '{response_id}' not found.", "type": NOT_FOUND_TYPE,
        "param": None, "code": None}}


def _previous_not_found(response: httpx.Response, response_id: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"error": {
        "message": f"Previous response with id '{response_id}' not found.",
        "type": NOT_FOUND_TYPE, "param": "previous_response_id",
        "code": "previous_response_not_found"}}


# --- store, retrieve, delete ------------------------------------------------------------------


async def test_a_stored_response_is_retrieved_listed_and_deleted(gateway: Gateway) -> None:
    created = await gateway.create(input="Say hello.", metadata={"k": "v"})
    assert created["store"] is True
    async with gateway.http() as http:
        got = await http.get(f"/v1/responses/{created['id']}")
        assert got.status_code == 200 and got.json() == created
        items = (await http.get(f"/v1/responses/{created['id']}/input_items")).json()
        assert items["object"] == "list" and items["has_more"] is False
        [item] = items["data"]
        assert (item["type"], item["role"], item["content"]) == (
            "message", "user", [{"type": "input_text", "text": "Say hello."}])
        assert items["first_id"] == items["last_id"] == item["id"]
        deleted = await http.delete(f"/v1/responses/{created['id']}")
        assert deleted.json() == {"id": created["id"], "object": "response.deleted",
                                  "deleted": True}
        _not_found(await http.get(f"/v1/responses/{created['id']}"), created["id"])
        _not_found(await http.delete(f"/v1/responses/{created['id']}"), created["id"])
        _not_found(await http.get(f"/v1/responses/{created['id']}/input_items"),
                   created["id"])


async def test_another_keys_response_is_not_found_anywhere(gateway: Gateway) -> None:
    created = await gateway.create(input="Mine.")
    the_id = created["id"]
    async with gateway.http("b") as http:
        _not_found(await http.get(f"/v1/responses/{the_id}"), the_id)
        _not_found(await http.get(f"/v1/responses/{the_id}/input_items"), the_id)
        _not_found(await http.delete(f"/v1/responses/{the_id}"), the_id)
        response = await http.post("/v1/responses", json={
            "model": "gpt-fake", "input": "Go on.", "previous_response_id": the_id})
        _previous_not_found(response, the_id)
    async with gateway.http() as http:  # untouched for its owner
        assert (await http.get(f"/v1/responses/{the_id}")).status_code == 200


async def test_store_false_keeps_nothing(gateway: Gateway) -> None:
    created = await gateway.create(input="Forget this.", store=False)
    assert created["store"] is False
    async with gateway.http() as http:
        _not_found(await http.get(f"/v1/responses/{created['id']}"), created["id"])
        _previous_not_found(await http.post("/v1/responses", json={
            "model": "gpt-fake", "input": "x", "previous_response_id": created["id"]}),
            created["id"])


async def test_a_key_with_storage_off_keeps_nothing_and_says_so(gateway: Gateway) -> None:
    created = await gateway.create("quiet", input="Forget this.")
    assert created["store"] is False
    async with gateway.http("quiet") as http:
        _not_found(await http.get(f"/v1/responses/{created['id']}"), created["id"])


async def test_a_gateway_with_storage_off_keeps_nothing(tmp_path: Path) -> None:
    async for gateway in _open(tmp_path, {"enabled": False}):
        created = await gateway.create(input="Forget this.")
        assert created["store"] is False
        async with gateway.http() as http:
            _not_found(await http.get(f"/v1/responses/{created['id']}"), created["id"])
            _previous_not_found(await http.post("/v1/responses", json={
                "model": "gpt-fake", "input": "x", "previous_response_id": created["id"]}),
                created["id"])


# --- previous_response_id ---------------------------------------------------------------------


async def test_previous_response_id_rebuilds_the_conversation(gateway: Gateway) -> None:
    gateway.openai.replies = [OpenAIReply(text="Paris."), OpenAIReply(text="About 2 million.")]
    first = await gateway.create(instructions="Be brief.", input="Capital of France?")
    second = await gateway.create(input="Its population?", previous_response_id=first["id"])
    assert second["previous_response_id"] == first["id"]
    assert second["output"][0]["content"][0]["text"] == "About 2 million."
    sent = gateway.openai.requests[-1]["messages"]
    # Instructions are not carried over (as OpenAI): only the turns themselves.
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "Its population?")]
    third = await gateway.create(input=[{"role": "user", "content": "And Lyon?"}],
                                 previous_response_id=second["id"])
    sent = gateway.openai.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user"]
    async with gateway.http() as http:
        items = (await http.get(f"/v1/responses/{third['id']}/input_items")).json()
    assert [i["content"][0]["text"] for i in items["data"]] == ["And Lyon?"]  # its own input


async def test_a_stored_namespaced_call_is_continued_under_its_flat_name(
    gateway: Gateway,
) -> None:
    crm = {"type": "namespace", "name": "crm", "description": "Customer records.",
           "tools": [{**WEATHER, "name": "lookup"}]}
    gateway.openai.replies = [
        OpenAIReply(text=None, finish_reason="tool_calls",
                    tool_calls=[{"name": "crm__lookup", "arguments": {"city": "Oslo"}}]),
        OpenAIReply(text="Found it.")]
    first = await gateway.create(input="Look up Oslo.", tools=[crm])
    (call,) = first["output"]
    assert (call["namespace"], call["name"]) == ("crm", "lookup")
    second = await gateway.create(tools=[crm], previous_response_id=first["id"], input=[
        {"type": "function_call_output", "call_id": call["call_id"], "output": "one record"}])
    assert second["output"][0]["content"][0]["text"] == "Found it."
    _, assistant, result = gateway.openai.requests[-1]["messages"]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["crm__lookup"]
    assert (result["tool_call_id"], result["content"]) == (call["call_id"], "one record")


async def test_a_deleted_link_breaks_the_chain_by_name(gateway: Gateway) -> None:
    first = await gateway.create(input="One.")
    second = await gateway.create(input="Two.", previous_response_id=first["id"])
    async with gateway.http() as http:
        await http.delete(f"/v1/responses/{first['id']}")
        _previous_not_found(await http.post("/v1/responses", json={
            "model": "gpt-fake", "input": "Three.", "previous_response_id": second["id"]}),
            first["id"])
    assert len(gateway.openai.requests) == 2  # refused before any upstream call


async def test_a_streamed_response_is_stored_when_it_completes(gateway: Gateway) -> None:
    async with gateway.http() as http:
        streamed = await http.post("/v1/responses", json={
            "model": "gpt-fake", "input": "Stream it.", "stream": True})
        assert streamed.status_code == 200
        final = [orjson.loads(line.removeprefix("data: "))
                 for line in streamed.text.splitlines() if '"response.completed"' in line]
        the_id = final[0]["response"]["id"]
        got = await http.get(f"/v1/responses/{the_id}")
    assert got.status_code == 200 and got.json()["output"] == final[0]["response"]["output"]


# --- input_items pages ------------------------------------------------------------------------


async def test_input_items_pages_like_openai(gateway: Gateway) -> None:
    texts = [f"m{n}" for n in range(5)]
    created = await gateway.create(input=[{"role": "user", "content": t} for t in texts])
    base = f"/v1/responses/{created['id']}/input_items"
    async with gateway.http() as http:
        newest = (await http.get(base, params={"limit": 2})).json()
        assert [i["content"][0]["text"] for i in newest["data"]] == ["m4", "m3"]
        assert newest["has_more"] is True
        rest = (await http.get(base, params={"limit": 10, "after": newest["last_id"]})).json()
        assert [i["content"][0]["text"] for i in rest["data"]] == ["m2", "m1", "m0"]
        assert rest["has_more"] is False
        oldest = (await http.get(base, params={"order": "asc", "limit": 1})).json()
        assert [i["content"][0]["text"] for i in oldest["data"]] == ["m0"]
        for params, param in [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                              ({"limit": "x"}, "limit"), ({"order": "up"}, "order"),
                              ({"after": "msg_nope"}, "after"), ({"page": 2}, "page")]:
            response = await http.get(base, params=params)
            assert response.status_code == 400, params
            error = response.json()["error"]
            assert error["param"] == param and error["type"] == "invalid_request_error"


# --- reasoning state --------------------------------------------------------------------------


def _thinking_turn(gateway: Gateway) -> None:
    gateway.claude.replies = [
        ClaudeReply(text=None, thinking="The user wants the weather; call the tool.",
                    tool_calls=[{"name": "weather", "input": {"city": "Paris"}}],
                    stop_reason="tool_use"),
        ClaudeReply(text="It is sunny in Paris."),
    ]


THINKING_REQUEST = {"model": "claude-think", "input": "Weather in Paris?", "tools": [WEATHER],
                    "reasoning": {"effort": "medium"}, "max_output_tokens": 4096}


def _output_result(call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}


async def test_signed_reasoning_round_trips_sealed_for_a_stateless_caller(
    gateway: Gateway,
) -> None:
    _thinking_turn(gateway)
    first = await gateway.create(**THINKING_REQUEST, store=False,
                                 include=["reasoning.encrypted_content"])
    reasoning, call = first["output"][0], first["output"][-1]
    assert reasoning["type"] == "reasoning" and call["type"] == "function_call"
    sealed = reasoning["encrypted_content"]
    assert isinstance(sealed, str) and "sig-" not in sealed and "weather" not in sealed
    second = await gateway.create(**{**THINKING_REQUEST, "store": False, "input": [
        {"role": "user", "content": "Weather in Paris?"}, reasoning, call,
        _output_result(call)]})
    assert second["output"][-1]["content"][0]["text"] == "It is sunny in Paris."
    # The fake refuses a continuation without the thinking block it signed: it came back.
    assistant = gateway.claude.requests[-1]["messages"][1]["content"]
    assert assistant[0]["type"] == "thinking"


async def test_without_include_reasoning_state_is_not_shown(gateway: Gateway) -> None:
    _thinking_turn(gateway)
    first = await gateway.create(**THINKING_REQUEST)
    assert first["output"][0]["type"] == "reasoning"
    assert first["output"][0].get("encrypted_content") is None
    async with gateway.http() as http:
        got = (await http.get(f"/v1/responses/{first['id']}")).json()
        assert got["output"][0].get("encrypted_content") is None
        shown = (await http.get(f"/v1/responses/{first['id']}",
                                params={"include[]": "reasoning.encrypted_content"})).json()
    assert isinstance(shown["output"][0]["encrypted_content"], str)


async def test_previous_response_id_brings_back_signed_reasoning(gateway: Gateway) -> None:
    _thinking_turn(gateway)
    first = await gateway.create(**THINKING_REQUEST)  # stored, state sealed in the store
    call = first["output"][-1]
    second = await gateway.create(**{**THINKING_REQUEST, "input": [_output_result(call)],
                                     "previous_response_id": first["id"]})
    assert second["output"][-1]["content"][0]["text"] == "It is sunny in Paris."
    assert gateway.claude.requests[-1]["messages"][1]["content"][0]["type"] == "thinking"


def _tampered(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-1] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("change", [_tampered, lambda token: token[:20], lambda _: "gAAAAABnb3Q"])
async def test_a_tampered_blob_is_refused_before_any_upstream_call(
    gateway: Gateway, change: Callable[[str], str],
) -> None:
    _thinking_turn(gateway)
    first = await gateway.create(**THINKING_REQUEST, store=False,
                                 include=["reasoning.encrypted_content"])
    reasoning, call = first["output"][0], first["output"][-1]
    bad = {**reasoning, "encrypted_content": change(reasoning["encrypted_content"])}
    calls = len(gateway.claude.requests)
    async with gateway.http() as http:
        response = await http.post("/v1/responses", json={**THINKING_REQUEST, "input": [
            {"role": "user", "content": "Weather in Paris?"}, bad, call, _output_result(call)]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "input[1].encrypted_content"
    assert error["type"] == "invalid_request_error" and error["code"] is None
    assert error["message"].startswith(
        "Invalid 'input[1].encrypted_content': the encrypted content could not be verified")
    assert len(gateway.claude.requests) == calls


# --- pass-through ------------------------------------------------------------------------------


async def test_a_forwarded_answer_is_stored_and_continued_by_translation(tmp_path: Path) -> None:
    """An upstream that serves the Responses API gets the caller's bytes, and the answer is
    stored; continuing it needs the gateway's store, so the next request is translated."""
    config = dict(CONFIG, providers={**CONFIG["providers"], "fake": {
        "kind": "openai", "base_url": "http://fake-upstream/v1", "responses_api": True}})
    path = tmp_path / "cometgate.yaml"
    path.write_bytes(orjson.dumps(config))
    settings = load_settings(path, data_dir=tmp_path / "data",
                             env={"HOME": str(tmp_path), "CLAUDE_KEY": "claude-secret"})
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create("a")
    openai, claude = FakeOpenAIUpstream(), FakeAnthropicUpstream()
    app = create_app(settings, providers=_providers(settings, openai, claude))
    async with app.router.lifespan_context(app):
        gateway = Gateway(app, {"a": key}, openai, claude)
        first = await gateway.create(input="Capital of France?")
        assert openai.requests[-1]["input"] == "Capital of France?"  # forwarded as sent
        gateway.openai.replies = [OpenAIReply(text="Two million.")]
        second = await gateway.create(input="Population?", previous_response_id=first["id"])
    assert second["output"][0]["content"][0]["text"] == "Two million."
    sent = openai.requests[-1]
    assert "input" not in sent and [m["role"] for m in sent["messages"]] == [
        "user", "assistant", "user"]


async def test_an_id_the_gateway_never_stored_is_left_to_a_responses_upstream(
    tmp_path: Path,
) -> None:
    """OpenAI itself may know a response the gateway never saw: forwarded, it decides."""
    config = dict(CONFIG, providers={**CONFIG["providers"], "fake": {
        "kind": "openai", "base_url": "http://fake-upstream/v1", "responses_api": True}})
    path = tmp_path / "cometgate.yaml"
    path.write_bytes(orjson.dumps(config))
    settings = load_settings(path, data_dir=tmp_path / "data",
                             env={"HOME": str(tmp_path), "CLAUDE_KEY": "claude-secret"})
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create("a")
    openai, claude = FakeOpenAIUpstream(), FakeAnthropicUpstream()
    app = create_app(settings, providers=_providers(settings, openai, claude))
    async with app.router.lifespan_context(app):
        gateway = Gateway(app, {"a": key}, openai, claude)
        await gateway.create(input="Go on.", previous_response_id="resp_upstream_own")
        assert openai.requests[-1]["previous_response_id"] == "resp_upstream_own"
        async with gateway.http() as http:  # a translated model still refuses it, as before
            response = await http.post("/v1/responses", json={
                "model": "claude-think", "input": "Go on.",
                "previous_response_id": "resp_upstream_own"})
        _previous_not_found(response, "resp_upstream_own")
    assert claude.requests == []
