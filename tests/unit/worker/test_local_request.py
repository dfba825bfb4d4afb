"""Validation of OpenAI Chat Completions request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.worker.request import (
    RequestError,
    parse_chat_request,
    parse_json_body,
)

USER = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "d",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": USER, **fields}


def test_minimal_request_gets_defaults() -> None:
    request = parse_chat_request(body(unknown_field=1, user="ignored"))
    assert request.n == 1
    assert request.max_tokens is None
    assert request.stream is False
    assert request.tool_choice == "none"
    assert request.response_format.kind == "text"
    assert request.sampling.temperature == 1.0


def test_full_request_is_read() -> None:
    request = parse_chat_request(body(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                          "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        temperature=0.2, top_p=0.9, top_k=20, min_p=0.1, max_completion_tokens=7, max_tokens=99,
        stop="END", seed=5, n=2, logprobs=True, top_logprobs=3, tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False, stream=True, stream_options={"include_usage": True},
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "string"}}},
    ))
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    assert request.messages[1].content == "a\nb"
    assert request.messages[2].tool_calls[0].name == "get_weather"
    assert request.messages[3].tool_call_id == "call_1"
    assert request.max_tokens == 7  # max_completion_tokens wins
    assert request.stop == ("END",)
    assert (request.sampling.top_k, request.sampling.seed) == (20, 5)
    assert request.tool_choice == "function"
    assert [f.name for f in request.callable_functions()] == ["get_weather"]
    assert request.include_usage is True
    assert request.response_format.schema == {"type": "string"}


@pytest.mark.parametrize(("fields", "param"), [
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"n": 0}, "n"),
    ({"top_p": 1.5}, "top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 3}, "stop"),
    ({"seed": "x"}, "seed"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, "messages[0].content[0]"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function",
                                               "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]},
     "tools[0].function.name"),
    ({"tools": [WEATHER_TOOL, WEATHER_TOOL]}, "tools"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
     "response_format.json_schema.name"),
    ({"model": ""}, "model"),
])
def test_invalid_values_are_rejected(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_chat_request(body(**fields))
    assert caught.value.param == param
    assert caught.value.status == 400


def test_below_minimum_has_openai_code() -> None:
    with pytest.raises(RequestError) as caught:
        parse_chat_request(body(max_tokens=-5))
    assert caught.value.code == "integer_below_min_value"
    assert "-5" in caught.value.message


def test_image_part_says_text_only() -> None:
    with pytest.raises(RequestError, match="text-only"):
        parse_chat_request(body(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]))


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"", b"\xff"])
def test_malformed_json_body(raw: bytes) -> None:
    with pytest.raises(RequestError):
        parse_json_body(raw)


def test_tools_default_to_auto_and_none_disables_calls() -> None:
    assert parse_chat_request(body(tools=[WEATHER_TOOL])).tool_choice == "auto"
    none = parse_chat_request(body(tools=[WEATHER_TOOL], tool_choice="none"))
    assert none.callable_functions() == ()
