"""The `openai` SDK's `client.responses` against live gateways.

One gateway's models reach the three fake upstreams (OpenAI-compatible, Anthropic, Gemini),
each through the canonical model; the other serves the real local model, whose wording is never
asserted — only structure, statuses, usage arithmetic and schema validity. Every streamed event
is parsed by the SDK itself (`client.responses.stream` raises on one it cannot read).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pydantic
import pytest
from openai.types.responses import (
    FunctionToolParam,
    ResponseFunctionToolCall,
    ResponseInputParam,
)

from tests.contract.conftest import KINDS
from tests.contract.scenarios import received, request_count, script_calls, script_text
from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.fake_upstreams_live import (
    FakesGateway,
    assert_results_paired,
    records_of,
    script_streamed_calls,
    sent_instructions_and_question,
    serve_before_fakes,
)
from tests.fakes import anthropic_upstream as anthropic

WEATHER: FunctionToolParam = {
    "type": "function", "name": "get_weather", "strict": None,
    "description": "Current temperature in a city, in Celsius",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}


class City(pydantic.BaseModel):
    name: str
    population: int


def sdk(gateway: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gateway.key, base_url=gateway.base_url + "/v1",
                         max_retries=0, timeout=60.0)


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "responses-sdk")


@pytest.fixture
def client(live: FakesGateway) -> Iterator[openai.OpenAI]:
    live.clear_scripts()
    with sdk(live.gateway) as opened:
        yield opened


def text_model(kind: str) -> str:
    return f"{kind}-text"


@pytest.mark.parametrize("kind", KINDS)
def test_create(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_text(kind, live.fakes, "Hello through the gateway.")
    raw = client.responses.with_raw_response.create(
        model=text_model(kind), instructions="Be brief.", input="Say hello")
    response = raw.parse()
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == "Hello through the gateway."
    assert response.model == text_model(kind) and response.instructions == "Be brief."
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert sent_instructions_and_question(kind, live.fakes) == ("Be brief.", "Say hello")
    (record,) = records_of(live.gateway, raw.headers["x-request-id"])
    assert (record["dialect"], record["provider"], record["status"]) == (
        "responses", kind, "200")


@pytest.mark.parametrize("kind", KINDS)
def test_stream_every_event(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_text(kind, live.fakes, "One two three four.", chunks=4)
    with client.responses.stream(model=text_model(kind), input="Count") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and kinds.count("response.output_text.done") == 1
    assert kinds.count("response.output_text.delta") >= 2
    assert final.output_text == "One two three four." and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0


def function_calls(response: Any) -> list[ResponseFunctionToolCall]:
    return [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_function_calling_loop(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    question: ResponseInputParam = [{"role": "user", "content": "Weather in Lima?"}]
    first = client.responses.create(model=text_model(kind), input=question, tools=[WEATHER])
    (call,) = function_calls(first)
    assert call.name == "get_weather" and orjson.loads(call.arguments) == {"city": "Lima"}
    assert call.call_id and call.status == "completed"
    script_text(kind, live.fakes, "It is 21.5 degrees in Lima.")
    final = client.responses.create(
        model=text_model(kind), tools=[WEATHER], input=[
            *question,
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id,
             "output": '{"celsius": 21.5}'}])
    assert final.output_text == "It is 21.5 degrees in Lima."
    assert_results_paired(kind, live.fakes, {call.call_id: "get_weather"}, ["21.5"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_function_call(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_streamed_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    with client.responses.stream(model=text_model(kind), input="Weather in Lima?",
                                 tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds
    (call,) = function_calls(final)
    assert orjson.loads(call.arguments) == {"city": "Lima"}


@pytest.mark.parametrize("kind", KINDS)
def test_parse_into_a_pydantic_model(live: FakesGateway, client: openai.OpenAI,
                                     kind: str) -> None:
    city = {"name": "Lima", "population": 10000000}
    if kind == "anthropic":  # constrained output comes back as one forced tool call
        live.fakes.anthropic.replies.append(anthropic.Reply(
            text=None, stop_reason="tool_use", tool_calls=[{"name": "respond", "input": city}]))
    else:
        script_text(kind, live.fakes, orjson.dumps(city).decode())
    response = client.responses.parse(model=text_model(kind), input="A big city",
                                      text_format=City)
    assert response.output_parsed == City(name="Lima", population=10000000)
    sent = received(kind, live.fakes)
    if kind == "openai":
        assert sent["response_format"]["json_schema"]["schema"]["required"] == [
            "name", "population"]
    elif kind == "gemini":
        assert sent["generationConfig"]["responseMimeType"] == "application/json"


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_input_tokens(client: openai.OpenAI, kind: str) -> None:
    """Counted through the shared pipeline, by the upstream's own count."""
    counted = client.responses.input_tokens.count(model=text_model(kind), input="Count me",
                                                  instructions="Be brief.")
    assert counted.object == "response.input_tokens" and counted.input_tokens > 0


def test_input_tokens_where_the_upstream_cannot_count(client: openai.OpenAI) -> None:
    """This OpenAI-kind provider declares no tokenize endpoint: refused in OpenAI's envelope
    rather than estimated."""
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.input_tokens.count(model="openai-text", input="Count me")
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["message"].startswith(
        "Token counting is not available for openai-text")


def test_refusals_are_sdk_errors(live: FakesGateway, client: openai.OpenAI) -> None:
    before = request_count("openai", live.fakes)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="openai-text", input="Hi", previous_response_id="resp_1")
    assert (raised.value.status_code, raised.value.param) == (400, "previous_response_id")
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="openai-text", input="Hi",
                                tools=[{"type": "web_search"}])
    assert raised.value.param == "tools" and "web_search" in raised.value.message
    assert "gemini-text" in raised.value.message  # it names the models that have it
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_123")
    assert "resp_123" in missing.value.message
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="no-such-model", input="Hi")
    assert unknown.value.code == "model_not_found"
    assert request_count("openai", live.fakes) == before


# --- the real local model --------------------------------------------------------------------


@pytest.fixture
def local(gateway: LiveGateway) -> Iterator[openai.OpenAI]:
    with sdk(gateway) as opened:
        yield opened


class Verdict(pydantic.BaseModel):
    positive: bool


@pytest.mark.model
def test_local_create_and_count(local: openai.OpenAI) -> None:
    response = local.responses.create(model=MODEL, input="Say hi", max_output_tokens=16,
                                      temperature=0.0)
    assert response.status in {"completed", "incomplete"} and response.output_text.strip()
    usage = response.usage
    assert usage is not None and 0 < usage.output_tokens <= 16
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    counted = local.responses.input_tokens.count(model=MODEL, input="Say hi")
    assert counted.input_tokens > 0


@pytest.mark.model
def test_local_stream(local: openai.OpenAI) -> None:
    with local.responses.stream(model=MODEL, input="Count to five", max_output_tokens=16,
                                temperature=0.0) as stream:
        events = list(stream)
    assert events[0].type == "response.created"
    last = events[-1]
    # The SDK hands a final response only for response.completed; a cut answer ends with
    # response.incomplete, which carries the response too.
    assert last.type in {"response.completed", "response.incomplete"}
    assert last.response.output_text.strip()
    usage = last.response.usage
    assert usage is not None and usage.total_tokens == usage.input_tokens + usage.output_tokens


@pytest.mark.model
def test_local_parse_is_constrained_by_the_schema(local: openai.OpenAI) -> None:
    response = local.responses.parse(model=MODEL, text_format=Verdict, max_output_tokens=64,
                                     temperature=0.0, input="Is the sun hot? Answer in JSON.")
    assert isinstance(response.output_parsed, Verdict)
