"""openai-agents (the Agents SDK) against a live gateway, with its default model class.

An `Agent` given no model runs on `OpenAIResponsesModel`, which calls `POST /v1/responses`
through the default `AsyncOpenAI` client — here one pointed at the gateway. Tracing is turned
off so that no run reports anywhere. Each fake upstream kind is asked a plain question, then
one the model answers by calling a function tool that the SDK runs itself; the tool's output
must reach the upstream in its own dialect before the final answer comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.items import RunItem, ToolCallItem, ToolCallOutputItem
from openai.types.responses import ResponseFunctionToolCall

from tests.contract.conftest import KINDS
from tests.contract.scenarios import request_count, script_calls, script_text
from tests.e2e.fake_upstreams_live import (
    FakesGateway,
    assert_results_paired,
    sent_instructions_and_question,
    serve_before_fakes,
)

INSTRUCTIONS = "You report the weather briefly."


@function_tool
def get_weather(city: str) -> str:
    """Current temperature in a city, in Celsius.

    Args:
        city: The city to look up.
    """
    return f'{{"city": "{city}", "celsius": 21.5}}'


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "agents-sdk")


@pytest.fixture
async def gateway_client(live: FakesGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK's process-wide default client, pointed at the gateway for one test."""
    live.clear_scripts()
    client = openai.AsyncOpenAI(api_key=live.gateway.key, base_url=live.gateway.base_url + "/v1",
                                max_retries=0, timeout=60.0)
    set_tracing_disabled(True)
    set_default_openai_api("responses")
    set_default_openai_client(client, use_for_tracing=False)
    async with client:
        yield client


def only_call_id(items: list[RunItem]) -> str:
    """The call id of the one tool call the SDK ran."""
    (call,) = [item.raw_item for item in items if isinstance(item, ToolCallItem)]
    assert isinstance(call, ResponseFunctionToolCall)
    return call.call_id


def weather_agent(kind: str) -> Agent[None]:
    # No model class given: the SDK's default, OpenAIResponsesModel, serves the agent.
    return Agent(name="Weather", instructions=INSTRUCTIONS, model=f"{kind}-text",
                 tools=[get_weather])


@pytest.mark.parametrize("kind", KINDS)
async def test_a_plain_turn(live: FakesGateway, gateway_client: openai.AsyncOpenAI,
                            kind: str) -> None:
    script_text(kind, live.fakes, "Hello from the agent.")
    result = await Runner.run(weather_agent(kind), "Say hello")
    assert result.final_output == "Hello from the agent."
    assert sent_instructions_and_question(kind, live.fakes) == (INSTRUCTIONS, "Say hello")
    (response,) = result.raw_responses
    assert response.response_id is not None and response.response_id.startswith("resp_")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_the_sdk_runs_a_called_tool(live: FakesGateway,
                                          gateway_client: openai.AsyncOpenAI,
                                          kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    script_text(kind, live.fakes, "It is 21.5 degrees in Lima.")
    before = request_count(kind, live.fakes)
    result = await Runner.run(weather_agent(kind), "Weather in Lima?")
    assert result.final_output == "It is 21.5 degrees in Lima."
    (output,) = [item for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert "21.5" in str(output.output)
    assert request_count(kind, live.fakes) == before + 2
    assert_results_paired(kind, live.fakes, {only_call_id(result.new_items): "get_weather"},
                          ["21.5"])


async def test_a_streamed_run_with_a_tool(live: FakesGateway,
                                          gateway_client: openai.AsyncOpenAI) -> None:
    script_calls("anthropic", live.fakes, [("get_weather", {"city": "Lima"})])
    script_text("anthropic", live.fakes, "Lima: 21.5 degrees, sunny.", chunks=4)
    result = Runner.run_streamed(weather_agent("anthropic"), "Weather in Lima?")
    kinds: list[str] = []
    deltas: list[str] = []
    async for event in result.stream_events():
        kinds.append(event.type)
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
    assert result.final_output == "Lima: 21.5 degrees, sunny."
    assert "".join(deltas) == "Lima: 21.5 degrees, sunny." and len(deltas) >= 2
    assert "run_item_stream_event" in kinds
    assert_results_paired("anthropic", live.fakes,
                          {only_call_id(result.new_items): "get_weather"}, ["21.5"])
