"""What an Anthropic caller's request becomes on translated upstreams (OpenAI-compatible and
Gemini), as the fake upstreams record it: tool results as plain text with the failure mark
where the target can say it, Anthropic-only service options dropped and named, adaptive
thinking on each kind of reasoning control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cometgate.providers.base import Provider
from tests.api.translated_gateway import TwoUpstreams, two_upstreams
from tests.fakes.openai_upstream import FakeOpenAIUpstream

WEATHER = {"name": "weather", "description": "Weather now.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
async def gateway(tmp_path: Path, fake_provider: Provider,
                  upstream: FakeOpenAIUpstream) -> AsyncIterator[TwoUpstreams]:
    async with two_upstreams(tmp_path, fake_provider, upstream) as opened:
        yield opened


def headers(gateway: TwoUpstreams, **extra: str) -> dict[str, str]:
    return {"x-api-key": gateway.key, "anthropic-version": "2023-06-01", **extra}


def tool_turns(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01", "name": "weather",
             "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01",
                                      **result}]},
    ]


def message(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 64,
            "messages": [{"role": "user", "content": "Say hello."}], **fields}


TEXT_RESULTS = [
    pytest.param({"content": "sunny in Paris"}, id="string"),
    pytest.param({"content": [{"type": "text", "text": "sunny in Paris"}], "is_error": False},
                 id="text-blocks"),
    pytest.param({"content": [{"type": "text", "text": "sunny"},
                              {"type": "text", "text": "in Paris"}]}, id="two-blocks"),
]


@pytest.mark.parametrize("result", TEXT_RESULTS)
async def test_a_tool_result_reaches_openai_as_its_text(
    gateway: TwoUpstreams, result: dict[str, Any]
) -> None:
    body = message("smollm2-135m-instruct", tools=[WEATHER], messages=tool_turns(result))
    response = await gateway.http.post("/v1/messages", json=body, headers=headers(gateway))
    assert response.status_code == 200, response.text
    tool_message = gateway.openai.requests[-1]["messages"][-1]
    expected = "sunny\nin Paris" if len(result["content"]) == 2 else "sunny in Paris"
    assert tool_message == {"role": "tool", "tool_call_id": tool_message["tool_call_id"],
                            "content": expected}
    assert "x-cometgate-dropped" not in response.headers


async def test_a_failed_tool_result_reaches_openai_as_its_text_and_the_mark_is_named(
    gateway: TwoUpstreams,
) -> None:
    result = {"content": [{"type": "text", "text": "station offline"}], "is_error": True}
    body = message("smollm2-135m-instruct", tools=[WEATHER], messages=tool_turns(result))
    response = await gateway.http.post("/v1/messages", json=body, headers=headers(gateway))
    assert response.status_code == 200, response.text
    assert gateway.openai.requests[-1]["messages"][-1]["content"] == "station offline"
    assert response.headers["x-cometgate-dropped"] == "messages[2].parts[0].is_error"


@pytest.mark.parametrize(("result", "response_field"), [
    ({"content": "sunny in Paris"}, {"output": "sunny in Paris"}),
    ({"content": [{"type": "text", "text": "sunny in Paris"}], "is_error": False},
     {"output": "sunny in Paris"}),
    ({"content": [{"type": "text", "text": "station offline"}], "is_error": True},
     {"error": "station offline"}),
    ({"content": "no reading", "is_error": True}, {"error": "no reading"}),
    ({}, {"output": ""}),
])
async def test_a_tool_result_reaches_gemini_as_output_or_error(
    gateway: TwoUpstreams, result: dict[str, Any], response_field: dict[str, Any]
) -> None:
    body = message("gem-plain", tools=[WEATHER], messages=tool_turns(result))
    response = await gateway.http.post("/v1/messages", json=body, headers=headers(gateway))
    assert response.status_code == 200, response.text
    [sent] = gateway.gemini_bodies()
    [part] = sent["contents"][-1]["parts"]
    assert part["functionResponse"]["name"] == "weather"
    assert part["functionResponse"]["response"] == response_field
    assert "x-cometgate-dropped" not in response.headers


CACHED = {"type": "ephemeral"}


def claude_code_turn(model: str) -> dict[str, Any]:
    """What Claude Code sends on every turn that only Anthropic's own service acts on."""
    return {
        "model": model, "max_tokens": 64,
        "system": [{"type": "text", "text": "You are a CLI.", "cache_control": CACHED}],
        "tools": [{**WEATHER, "cache_control": CACHED}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Say hello.", "cache_control": CACHED}]}],
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015",
                                          "keep": "all"}]},
    }


SERVICE_ONLY = ["anthropic-beta", "metadata", "context_management", "tools.0.cache_control",
                "messages.0.content.0.cache_control", "system.0.cache_control"]
BETA = "claude-code-20250219,context-management-2025-06-27,interleaved-thinking-2025-05-14"


@pytest.mark.parametrize("model", ["smollm2-135m-instruct", "gem-plain"])
async def test_service_only_features_are_dropped_and_named_by_default(
    gateway: TwoUpstreams, model: str
) -> None:
    response = await gateway.http.post("/v1/messages", json=claude_code_turn(model),
                                       headers=headers(gateway, **{"anthropic-beta": BETA}))
    assert response.status_code == 200, response.text
    assert response.headers["x-cometgate-dropped"].split(",") == SERVICE_ONLY
    sent = (gateway.openai.requests[-1] if model.startswith("smollm")
            else gateway.gemini_bodies()[-1])
    flat = str(sent)
    assert "cache_control" not in flat and "context_management" not in flat
    assert "user_abc" not in flat and "claude-code-2025" not in flat


async def test_service_only_features_are_refused_under_the_strict_policy(
    gateway: TwoUpstreams,
) -> None:
    strict = await gateway.key_with("strict")
    response = await gateway.http.post(
        "/v1/messages", json=claude_code_turn("smollm2-135m-instruct"),
        headers={**headers(gateway, **{"anthropic-beta": BETA}), "x-api-key": strict})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    lines = body["error"]["message"].split("\n")
    assert [line.split(" is not supported")[0] for line in lines] == SERVICE_ONLY
    assert lines[0] == ("anthropic-beta is not supported by models/smollm2-135m-instruct: "
                        "beta features are switched on only in Anthropic's own API")
    assert gateway.openai.requests == []


async def test_service_only_features_are_dropped_and_named_by_a_lenient_key(
    gateway: TwoUpstreams,
) -> None:
    lenient = await gateway.key_with("lenient")
    response = await gateway.http.post(
        "/v1/messages", json=claude_code_turn("gem-plain"),
        headers={**headers(gateway, **{"anthropic-beta": BETA}), "x-api-key": lenient})
    assert response.status_code == 200, response.text
    assert response.headers["x-cometgate-dropped"].split(",") == SERVICE_ONLY


async def test_a_stream_names_the_dropped_features_too(gateway: TwoUpstreams) -> None:
    body = {**claude_code_turn("gem-plain"), "stream": True}
    response = await gateway.http.post("/v1/messages", json=body,
                                       headers=headers(gateway, **{"anthropic-beta": BETA}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-cometgate-dropped"].split(",") == SERVICE_ONLY


# --- adaptive thinking and output_config.effort -----------------------------------------------

EFFORTS = ["low", "medium", "high", "max"]


def adaptive(model: str, effort: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"thinking": {"type": "adaptive"}}
    if effort is not None:
        extra["output_config"] = {"effort": effort}
    return message(model, max_tokens=400, **extra)


@pytest.mark.parametrize(("model", "field", "expected"), [
    # Gemini, budget-style (128 … 24576): the table's budgets, "max" the model's maximum.
    ("gem-budget", "thinkingBudget", [1024, 8192, 24576, 24576]),
    # Gemini, level-style offering LOW and HIGH: the nearest offered level, ties upward.
    ("gem-levels", "thinkingLevel", ["LOW", "HIGH", "HIGH", "HIGH"]),
])
async def test_an_effort_reaches_gemini_as_its_thinking_control(
    gateway: TwoUpstreams, model: str, field: str, expected: list[Any]
) -> None:
    for effort in EFFORTS:
        response = await gateway.http.post("/v1/messages", json=adaptive(model, effort),
                                           headers=headers(gateway))
        assert response.status_code == 200, response.text
        assert "x-cometgate-dropped" not in response.headers
    configs = [body["generationConfig"]["thinkingConfig"] for body in gateway.gemini_bodies()]
    assert [config[field] for config in configs] == expected
    assert all(config["includeThoughts"] is True and len(config) == 2 for config in configs)


@pytest.mark.parametrize("model", ["budget-thinker", "level-thinker"])
async def test_an_effort_reaches_openai_as_reasoning_effort(
    gateway: TwoUpstreams, model: str
) -> None:
    for effort in EFFORTS:
        response = await gateway.http.post("/v1/messages", json=adaptive(model, effort),
                                           headers=headers(gateway))
        assert response.status_code == 200, response.text
    sent = [body["reasoning_effort"] for body in gateway.openai.requests]
    # level-thinker offers LOW and HIGH only: "medium" is met by the nearest, HIGH.
    assert sent == (["low", "medium", "high", "high"] if model == "budget-thinker"
                    else ["low", "high", "high", "high"])


async def test_adaptive_thinking_without_an_effort_lets_the_model_decide(
    gateway: TwoUpstreams,
) -> None:
    for model in ("gem-budget", "gem-levels", "budget-thinker"):
        response = await gateway.http.post("/v1/messages", json=adaptive(model, None),
                                           headers=headers(gateway))
        assert response.status_code == 200, response.text
    assert [body["generationConfig"]["thinkingConfig"] for body in gateway.gemini_bodies()] == [
        {"includeThoughts": True, "thinkingBudget": -1}] * 2
    assert "reasoning_effort" not in gateway.openai.requests[-1]


async def test_an_effort_without_adaptive_thinking_is_dropped_and_named(
    gateway: TwoUpstreams,
) -> None:
    body = message("gem-budget", output_config={"effort": "low"})
    response = await gateway.http.post("/v1/messages", json=body, headers=headers(gateway))
    assert response.status_code == 200, response.text
    assert response.headers["x-cometgate-dropped"] == "output_config.effort"
    assert "thinkingConfig" not in gateway.gemini_bodies()[-1].get("generationConfig", {})


ADAPTIVE_REFUSED = ("thinking.type: adaptive thinking is not supported on this model "
                    "('gem-plain' has no thinking)")
ADAPTIVE = [({"type": "adaptive"}, "high"), ({"type": "adaptive"}, None)]


def _thinking_body(thinking: dict[str, Any], effort: str | None) -> dict[str, Any]:
    body = message("gem-plain", max_tokens=256, thinking=thinking,
                   output_config={"effort": effort} if effort else None)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(("thinking", "effort"), ADAPTIVE, ids=["with-effort", "alone"])
async def test_adaptive_thinking_on_a_model_without_it_answers_without_thinking(
    gateway: TwoUpstreams, thinking: dict[str, Any], effort: str | None
) -> None:
    """Adaptive thinking lets the model decide whether to think; a model that cannot think
    decides not to. Claude Code asks every model for it and cannot be told to stop."""
    response = await gateway.http.post("/v1/messages", json=_thinking_body(thinking, effort),
                                       headers=headers(gateway))
    assert response.status_code == 200, response.text
    assert "thinking" in response.headers["x-cometgate-dropped"].split(", ")
    assert "thinkingConfig" not in gateway.gemini_bodies()[-1].get("generationConfig", {})


@pytest.mark.parametrize(("thinking", "effort"), ADAPTIVE, ids=["with-effort", "alone"])
async def test_adaptive_thinking_on_a_model_without_it_is_refused_under_strict(
    gateway: TwoUpstreams, thinking: dict[str, Any], effort: str | None
) -> None:
    strict = await gateway.key_with("strict")
    response = await gateway.http.post("/v1/messages", json=_thinking_body(thinking, effort),
                                       headers={**headers(gateway), "x-api-key": strict})
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error",
                                        "message": ADAPTIVE_REFUSED}
    assert gateway.gemini.requests == []


async def test_a_fixed_thinking_budget_on_a_model_without_it_is_refused(
    gateway: TwoUpstreams,
) -> None:
    body = message("gem-plain", max_tokens=2048,
                   thinking={"type": "enabled", "budget_tokens": 1024})
    response = await gateway.http.post("/v1/messages", json=body, headers=headers(gateway))
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"] == {
        "type": "invalid_request_error",
        "message": "thinking: 'gem-plain' does not support thinking"}
    assert gateway.gemini.requests == []
