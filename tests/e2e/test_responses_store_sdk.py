"""The openai SDK's stored-response calls against a live `cometgate serve` in front of the three
fake upstreams: `previous_response_id` on every upstream kind, `responses.retrieve`,
`responses.input_items.list`, `responses.delete`, `store=False`, another key's ids,
`background=True` polled with `responses.retrieve` and stopped with `responses.cancel`,
`responses.compact` and a conversation continued from its compaction item, and
reasoning `encrypted_content` round trips — Anthropic's signed thinking (the fake refuses a
tool-use continuation without it) and Gemini's thought signature on a function call."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import orjson
import pytest

from tests.contract.conftest import KINDS, UPSTREAM_MODEL, Fakes
from tests.contract.scenarios import received, script_text
from tests.e2e.conftest import LiveGateway, create_key, start_gateway
from tests.e2e.fake_upstreams_live import FakesThread, config_text, env_key, provider_names
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai_fake

THINKING = "thinking: {style: budget, budget_min: 1024, budget_max: 24576}"
WEATHER = {"type": "function", "name": "weather", "description": "Weather now.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
INCLUDE = ["reasoning.encrypted_content"]
POLLS, POLL_SECONDS = 200, 0.05


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    other_key: str
    thread: FakesThread

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(api_key=key or self.gateway.key,
                             base_url=self.gateway.base_url + "/v1", max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    thread = FakesThread()
    with thread as fakes, pytest.MonkeyPatch.context() as patch:
        for provider in provider_names(limited=False):
            patch.setenv(env_key(provider), f"secret-{provider}")
        text = config_text(fakes) + "".join(
            f"  {kind}-think: {{provider: {kind}, upstream_model: {UPSTREAM_MODEL[kind]}, "
            f"input_token_limit: 100000, output_token_limit: 8192, {THINKING}}}\n"
            for kind in ("anthropic", "gemini"))
        root = tmp_path_factory.mktemp("responses-store")
        for gateway in start_gateway(root, pytestconfig, text):
            yield Live(gateway, fakes, create_key(gateway.data_dir, "other"), thread)


@pytest.fixture(autouse=True)
def clean_scripts(live: Live) -> None:
    for fake in (live.fakes.openai, live.fakes.anthropic, live.fakes.gemini):
        fake.replies.clear()


def _texts(body: Any) -> str:
    return orjson.dumps(body).decode()


@pytest.mark.parametrize("kind", KINDS)
def test_previous_response_id_continues_on_every_upstream(live: Live, kind: str) -> None:
    client = live.client()
    script_text(kind, live.fakes, "Paris is the capital.")
    script_text(kind, live.fakes, "About two million people.")
    first = client.responses.create(model=f"{kind}-text", input="Capital of France?")
    second = client.responses.create(model=f"{kind}-text", input="How many live there?",
                                     previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.output_text == "About two million people."
    sent = _texts(received(kind, live.fakes))
    for earlier in ("Capital of France?", "Paris is the capital.", "How many live there?"):
        assert earlier in sent


def test_retrieve_list_items_and_delete(live: Live) -> None:
    client = live.client()
    created = client.responses.create(model="openai-text", input=[
        {"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
    got = client.responses.retrieve(created.id)
    assert got.id == created.id and got.output_text == created.output_text
    page = client.responses.input_items.list(created.id, order="asc", limit=1)
    assert [item.content[0].text for item in page.data] == ["one"]
    assert page.has_more is True
    everything = list(client.responses.input_items.list(created.id, order="asc", limit=1))
    assert [i.content[0].text for i in everything] == ["one", "two"]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert caught.value.body == {"message": f"Response with id '{created.id}' not found.",
                                 "type": "invalid_request_error", "param": None, "code": None}


def test_store_false_is_not_retrievable(live: Live) -> None:
    client = live.client()
    created = client.responses.create(model="openai-text", input="Forget me.", store=False)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_another_keys_response_is_not_found(live: Live) -> None:
    mine = live.client().responses.create(model="openai-text", input="Mine.")
    theirs = live.client(live.other_key)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as caught:
        theirs.responses.create(model="openai-text", input="Go on.",
                                previous_response_id=mine.id)
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_a_background_response_is_polled_to_completed(live: Live) -> None:
    client = live.client()
    script_text("openai", live.fakes, "Finished while you waited.")
    queued = client.responses.create(model="openai-text", input="Take your time.",
                                     background=True)
    assert (queued.status, queued.background) in (("queued", True), ("in_progress", True))
    polled = queued
    for _ in range(POLLS):  # bounded: the fake answers at once
        polled = client.responses.retrieve(queued.id)
        if polled.status not in ("queued", "in_progress"):
            break
        time.sleep(POLL_SECONDS)
    assert (polled.status, polled.output_text) == ("completed", "Finished while you waited.")
    assert polled.usage is not None and polled.usage.input_tokens > 0


def test_a_background_response_is_cancelled(live: Live) -> None:
    client = live.client()
    hold = asyncio.Event()  # the fake is still answering when the caller cancels
    live.fakes.openai.replies.append(openai_fake.Reply(hold=hold))
    try:
        queued = client.responses.create(model="openai-text", input="Never mind.",
                                         background=True)
        cancelled = client.responses.cancel(queued.id)
        assert (cancelled.id, cancelled.status) == (queued.id, "cancelled")
        assert client.responses.retrieve(queued.id).status == "cancelled"
    finally:
        live.thread.release(hold)
    synchronous = client.responses.create(model="openai-text", input="Now.")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(synchronous.id)
    assert caught.value.body == {"message": "Cannot cancel a synchronous response.",
                                 "type": "invalid_request_error", "param": None, "code": None}
    with pytest.raises(openai.NotFoundError):
        live.client(live.other_key).responses.cancel(queued.id)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="openai-text", input="x", background=True, store=False)
    assert refused.value.param == "background"


@pytest.mark.parametrize("kind", KINDS)
def test_compact_then_continue_from_the_compaction(live: Live, kind: str) -> None:
    client = live.client()
    script_text(kind, live.fakes, "The user is moving to Lima and asked about rent.")
    script_text(kind, live.fakes, "Rents in Lima vary by district.")
    raw = client.responses.with_raw_response.compact(model=f"{kind}-text",
                                                      input=[
        {"role": "user", "content": "I am moving to Lima."},
        {"type": "function_call", "call_id": "call_1", "name": "weather",
         "arguments": '{"city": "Lima"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "Mild, 19 C."},
        {"role": "assistant", "content": "Mild weather. How can I help?"},
        {"role": "user", "content": "What about rent?"}])
    compacted = raw.parse()
    assert compacted.object == "response.compaction"
    assert compacted.output[-1].type == "compaction" and compacted.usage.input_tokens > 0
    # Sent back as received, as Codex does: the SDK's output types have no user messages,
    # so re-serialising its parsed items would not be the same JSON.
    following = client.responses.create(model=f"{kind}-text", input=[
        *raw.http_response.json()["output"],
        {"role": "user", "content": "Which district is cheapest?"}])
    assert following.output_text == "Rents in Lima vary by district."
    sent = _texts(received(kind, live.fakes))
    assert "The user is moving to Lima and asked about rent." in sent
    assert "Which district is cheapest?" in sent


def _signed_tool_turn(live: Live) -> None:
    live.fakes.anthropic.replies += [
        anthropic.Reply(text=None, thinking="I should look the weather up.",
                        tool_calls=[{"name": "weather", "input": {"city": "Lima"}}],
                        stop_reason="tool_use"),
        anthropic.Reply(text="Sunny in Lima."),
    ]


def test_anthropic_signed_thinking_round_trips_in_encrypted_content(live: Live) -> None:
    client = live.client()
    _signed_tool_turn(live)
    first = client.responses.create(model="anthropic-think", input="Weather in Lima?",
                                    tools=[WEATHER], reasoning={"effort": "medium"},
                                    max_output_tokens=4096, store=False, include=INCLUDE)
    reasoning, call = first.output[0], first.output[-1]
    assert reasoning.type == "reasoning" and call.type == "function_call"
    assert reasoning.encrypted_content and "sig-" not in reasoning.encrypted_content
    second = client.responses.create(
        model="anthropic-think", tools=[WEATHER], reasoning={"effort": "medium"},
        max_output_tokens=4096, store=False, include=INCLUDE,
        input=[{"role": "user", "content": "Weather in Lima?"},
               reasoning.model_dump(exclude_none=True),
               call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "Sunny in Lima."
    assert received("anthropic", live.fakes)["messages"][1]["content"][0]["type"] == "thinking"


def test_gemini_thought_signature_on_a_call_round_trips(live: Live) -> None:
    client = live.client()
    signature = base64.b64encode(b"gemini-opaque-state").decode()
    document = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Look it up.", "thought": True},
        {"functionCall": {"name": "weather", "args": {"city": "Lima"}},
         "thoughtSignature": signature}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4,
                          "totalTokenCount": 13}, "modelVersion": "gemini-up"}
    live.fakes.gemini.replies += [gemini.Reply(raw_body=orjson.dumps(document)),
                                  gemini.Reply(text="Sunny in Lima.")]
    first = client.responses.create(model="gemini-think", input="Weather in Lima?",
                                    tools=[WEATHER], reasoning={"effort": "low"},
                                    include=INCLUDE)
    call = first.output[-1]
    assert call.type == "function_call"
    client.responses.create(model="gemini-think", tools=[WEATHER], previous_response_id=first.id,
                            input=[{"type": "function_call_output", "call_id": call.call_id,
                                    "output": "sunny"}])
    parts = received("gemini", live.fakes)["contents"][1]["parts"]
    called = [p for p in parts if "functionCall" in p]
    assert called[0]["thoughtSignature"] == signature


def test_a_tampered_blob_is_a_400_naming_it(live: Live) -> None:
    client = live.client()
    _signed_tool_turn(live)
    first = client.responses.create(model="anthropic-think", input="Weather in Lima?",
                                    tools=[WEATHER], reasoning={"effort": "medium"},
                                    max_output_tokens=4096, store=False, include=INCLUDE)
    reasoning = first.output[0].model_dump(exclude_none=True)
    reasoning["encrypted_content"] = reasoning["encrypted_content"][:-4] + "AAAA"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="anthropic-think", input=[
            {"role": "user", "content": "Weather in Lima?"}, reasoning], store=False)
    assert caught.value.param == "input[1].encrypted_content"
    assert caught.value.code is None
    assert "could not be verified" in str(caught.value.message)
