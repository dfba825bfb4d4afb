"""Function calling through generateContent: declarations and tool config going up, calls and
results in the history, and the upstream's tool calls coming back as functionCall parts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.bodies import GENERATE, WEATHER_TOOLS, error_of, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}


def with_tool_config(mode: str, allowed: list[str] | None = None) -> dict[str, Any]:
    calling: dict[str, Any] = {"mode": mode}
    if allowed is not None:
        calling["allowedFunctionNames"] = allowed
    return {**text_body(), "tools": WEATHER_TOOLS,
            "toolConfig": {"functionCallingConfig": calling}}


async def test_declarations_become_openai_functions(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json={**text_body(), "tools": WEATHER_TOOLS})
    assert response.status_code == 200
    sent = upstream.requests[0]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather",
                                          "description": "Current weather in a city",
                                          "parameters": WEATHER_SCHEMA}},
        {"type": "function", "function": {"name": "get_time",
                                          "parameters": {"type": "object"}}},
    ]
    assert sent["tool_choice"] == "auto"


@pytest.mark.parametrize(
    "mode, allowed, expected_choice, expected_names",
    [
        ("AUTO", None, "auto", ["get_weather", "get_time"]),
        ("ANY", None, "required", ["get_weather", "get_time"]),
        ("NONE", None, "none", ["get_weather", "get_time"]),
        ("ANY", ["get_time"], {"type": "function", "function": {"name": "get_time"}},
         ["get_time"]),
        ("ANY", ["get_time", "get_weather"], "required", ["get_weather", "get_time"]),
    ],
)
async def test_tool_config_becomes_tool_choice(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, mode: str,
    allowed: list[str] | None, expected_choice: Any, expected_names: list[str],
) -> None:
    response = await client.post(GENERATE, json=with_tool_config(mode, allowed))
    assert response.status_code == 200
    sent = upstream.requests[0]
    assert sent["tool_choice"] == expected_choice
    assert [tool["function"]["name"] for tool in sent["tools"]] == expected_names


async def test_allowed_names_with_auto_mode_are_refused(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json=with_tool_config("AUTO", ["get_time"]))
    assert response.status_code == 400
    assert "allowed_function_names" in error_of(response.content)["message"]
    assert upstream.requests == []


async def test_undeclared_allowed_name_is_refused(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(GENERATE, json=with_tool_config("ANY", ["launch"]))
    assert response.status_code == 400
    assert "launch" in error_of(response.content)["message"]
    assert upstream.requests == []


async def test_call_and_result_history_pairs_ids(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {
        "tools": WEATHER_TOOLS,
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Oslo?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 3}}},
            ]},
        ],
    }
    assert (await client.post(GENERATE, json=body)).status_code == 200
    user, assistant, first, second = upstream.requests[0]["messages"]
    assert user == {"role": "user", "content": "Weather in Paris and Oslo?"}
    assert assistant["role"] == "assistant" and assistant["content"] is None
    calls = assistant["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == ['{"city":"Paris"}', '{"city":"Oslo"}']
    assert all(c["type"] == "function" and c["function"]["name"] == "get_weather"
               for c in calls)
    assert len({c["id"] for c in calls}) == 2
    assert first == {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temp":21}'}
    assert second == {"role": "tool", "tool_call_id": calls[1]["id"], "content": '{"temp":3}'}


async def test_caller_supplied_call_ids_are_kept(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {
        "tools": WEATHER_TOOLS,
        "contents": [
            {"role": "user", "parts": [{"text": "Time?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"id": "c-1", "name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "c-1", "name": "get_time",
                                      "response": {"now": "noon"}}}]},
        ],
    }
    assert (await client.post(GENERATE, json=body)).status_code == 200
    messages = upstream.requests[0]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "c-1"
    assert messages[2] == {"role": "tool", "tool_call_id": "c-1",
                           "content": '{"now":"noon"}'}


async def test_unpaired_function_response_is_refused(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    body = {"tools": WEATHER_TOOLS, "contents": [
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 1}}}]},
    ]}
    response = await client.post(GENERATE, json=body)
    assert response.status_code == 400
    assert upstream.requests == []


async def test_upstream_tool_calls_become_function_call_parts(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(
        text=None, finish_reason="tool_calls",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}},
                    {"name": "get_time", "arguments": {}}],
    ))
    response = await client.post(GENERATE, json={**text_body(), "tools": WEATHER_TOOLS})
    assert response.status_code == 200
    (candidate,) = response.json()["candidates"]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [
        {"functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Oslo"}}},
        {"functionCall": {"id": "call_1", "name": "get_time", "args": {}}},
    ]


async def test_bad_function_name_is_refused(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    tools = [{"functionDeclarations": [{"name": "9lives"}]}]
    response = await client.post(GENERATE, json={**text_body(), "tools": tools})
    assert response.status_code == 400
    assert "Invalid function name" in error_of(response.content)["message"]
    assert upstream.requests == []
