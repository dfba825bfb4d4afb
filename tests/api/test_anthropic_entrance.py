"""The Anthropic dialect's entrance through the app, translated to the shared OpenAI-compatible
fake upstream: Messages in and out, streams as Anthropic's event sequence, x-api-key auth,
token counts, and errors in Anthropic's envelope — with the same records as every dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.api.conftest import AppWithRecords, OpenAppWithRecords
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "smollm2-135m-instruct"
MESSAGE = {"model": MODEL, "max_tokens": 64, "system": "Be brief.",
           "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
async def gateway(open_app: OpenAppWithRecords, api_key: str) -> AsyncIterator[AppWithRecords]:
    async with open_app({"x-api-key": api_key, "anthropic-version": "2023-06-01"}) as opened:
        yield opened


def events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


async def test_a_message_is_translated_there_and_back_with_one_record(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/messages", json=MESSAGE)
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "Hello from the fake upstream."}]
    assert message["stop_reason"] == "end_turn" and message["model"] == MODEL
    assert message["usage"]["input_tokens"] == 7 and message["usage"]["output_tokens"] == 5
    sent = upstream.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 64
    [record] = await gateway.records()
    assert (record.dialect, record.status, record.prompt_tokens) == ("anthropic", 200, 7)


async def test_a_stream_is_anthropics_event_sequence(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/messages", json={**MESSAGE, "stream": True})
    assert response.status_code == 200
    seen = events(response.content)
    names = [name for name, _ in seen]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "content_block_start" in names and "content_block_stop" in names
    text = "".join(d["delta"]["text"] for n, d in seen
                   if n == "content_block_delta" and d["delta"]["type"] == "text_delta")
    assert text == "Hello from the fake upstream."
    final = dict(seen)["message_delta"]
    assert final["delta"]["stop_reason"] == "end_turn" and final["usage"]["output_tokens"] == 5
    [record] = await gateway.records()
    assert (record.stream, record.output_tokens) == (True, 5)


async def test_a_tool_loop_keeps_the_call_ids(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text=None, finish_reason="tool_calls",
                                  tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]))
    tools = [{"name": "weather", "description": "Weather now.",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = (await gateway.http.post("/v1/messages", json={**MESSAGE, "tools": tools})).json()
    assert first["stop_reason"] == "tool_use"
    [call] = [block for block in first["content"] if block["type"] == "tool_use"]
    assert call["name"] == "weather" and call["input"] == {"city": "Oslo"}
    follow_up = {**MESSAGE, "tools": tools, "messages": [
        *MESSAGE["messages"],
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "Sunny, 21 C"}]},
    ]}
    response = await gateway.http.post("/v1/messages", json=follow_up)
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == sent[-1]["tool_call_id"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "Sunny, 21 C"


async def test_count_tokens_counts_with_the_models_tokenizer(gateway: AppWithRecords) -> None:
    body = {key: value for key, value in MESSAGE.items() if key != "max_tokens"}
    response = await gateway.http.post("/v1/messages/count_tokens", json=body)
    assert response.status_code == 200, response.text
    # The fake's /tokenize counts one token per word: "Be brief." and "Say hello."
    assert response.json() == {"input_tokens": 4}
    assert await gateway.records() == []  # a count is not a generation


@pytest.mark.parametrize(("headers", "status", "kind"), [
    ({"x-api-key": ""}, 401, "authentication_error"),
    ({"x-api-key": "sk-ant-wrong"}, 401, "authentication_error"),
])
async def test_key_failures_are_anthropic_errors(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream, headers: dict[str, str], status: int,
    kind: str,
) -> None:
    response = await gateway.http.post("/v1/messages", json=MESSAGE, headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert upstream.requests == [] and await gateway.records() == []


@pytest.mark.parametrize(("change", "status", "kind"), [
    ({"max_tokens": None}, 400, "invalid_request_error"),
    ({"model": "nope"}, 404, "not_found_error"),
    ({"temperature": 3}, 400, "invalid_request_error"),
])
async def test_bad_requests_are_anthropic_errors_and_reach_nobody(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream, change: dict[str, Any], status: int,
    kind: str,
) -> None:
    body = {**MESSAGE, **change}
    body = {key: value for key, value in body.items() if value is not None}
    response = await gateway.http.post("/v1/messages", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == kind
    assert upstream.requests == []


async def test_a_field_that_only_tunes_is_dropped_and_named(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    tools = [{"name": "weather", "input_schema": {"type": "object"}}]
    response = await gateway.http.post("/v1/messages", json={
        **MESSAGE, "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}})
    assert response.status_code == 200, response.text
    assert "disable_parallel_tool_use" in response.headers["x-cometgate-dropped"]
    assert "parallel_tool_calls" not in upstream.requests[-1]


async def test_a_field_that_changes_the_meaning_is_refused(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    response = await gateway.http.post("/v1/messages", json={**MESSAGE, "tools": tools})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("tools.0 is not supported")  # Anthropic's paths
    assert upstream.requests == []


async def test_an_effort_reaches_a_budget_only_model_as_a_budget(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    """budget-thinker takes thinking budgets only, and an Anthropic caller's adaptive thinking
    names an effort: the gateway turns the effort into a budget in the model's range (which
    the OpenAI codec then sends as reasoning_effort) instead of refusing it."""
    response = await gateway.http.post("/v1/messages", json={
        **MESSAGE, "model": "budget-thinker",
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}})
    assert response.status_code == 200, response.text
    assert upstream.requests[-1]["reasoning_effort"] == "low"
