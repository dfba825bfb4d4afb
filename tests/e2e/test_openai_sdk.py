"""The `openai` SDK (sync and async) against live gateways.

One gateway's models reach the three fake upstreams: an OpenAI caller's request is forwarded as
it is to the OpenAI-kind upstream and translated for the Anthropic and Gemini ones. The other
gateway serves the real local model, whose wording is never asserted — only structure, finish
reasons, usage arithmetic and schema validity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import orjson
import pydantic
import pytest
from openai.types.chat import (
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from tests.contract.conftest import KINDS
from tests.contract.scenarios import (
    received,
    request_count,
    script_calls,
    script_error,
    script_text,
)
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

QUESTION: ChatCompletionMessageParam = {"role": "user", "content": "Weather in Lima?"}
WEATHER_TOOL: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Current temperature in a city, in Celsius",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


class City(pydantic.BaseModel):
    name: str
    population: int


def sdk(gateway: LiveGateway, key: str | None = None) -> openai.OpenAI:
    # No retries: a refusal must surface as the exception of its one answer.
    return openai.OpenAI(api_key=key or gateway.key, base_url=gateway.base_url + "/v1",
                         max_retries=0, timeout=60.0)


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "openai-sdk", limited=True)


@pytest.fixture
def client(live: FakesGateway) -> Iterator[openai.OpenAI]:
    live.clear_scripts()
    with sdk(live.gateway) as opened:
        yield opened


@pytest.fixture
async def async_client(live: FakesGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    live.clear_scripts()
    async with openai.AsyncOpenAI(api_key=live.gateway.key, max_retries=0, timeout=60.0,
                                  base_url=live.gateway.base_url + "/v1") as opened:
        yield opened  # its connections belong to this test's event loop


def text_model(kind: str) -> str:
    return f"{kind}-text"


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls), calls
    return [c for c in calls if isinstance(c, ChatCompletionMessageFunctionToolCall)]


def assistant_turn(calls: list[ChatCompletionMessageFunctionToolCall]
                   ) -> ChatCompletionMessageParam:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": c.id, "type": "function",
         "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in calls]}


# --- the fake upstreams ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_create(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_text(kind, live.fakes, "Hello through the gateway.")
    completion = client.chat.completions.create(
        model=text_model(kind), messages=[{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Say hello"}])
    (choice,) = completion.choices
    assert (choice.message.role, choice.message.content) == ("assistant",
                                                             "Hello through the gateway.")
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert sent_instructions_and_question(kind, live.fakes) == ("Be brief.", "Say hello")


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
@pytest.mark.parametrize("kind", KINDS)
def test_stream(live: FakesGateway, client: openai.OpenAI, kind: str,
                include_usage: bool) -> None:
    script_text(kind, live.fakes, "One two three four.", chunks=4)
    chunks = list(client.chat.completions.create(
        model=text_model(kind), messages=[{"role": "user", "content": "Count"}], stream=True,
        stream_options={"include_usage": True} if include_usage else openai.omit))
    assert len(chunks) >= 3
    assert "".join(c.choices[0].delta.content or "" for c in chunks
                   if c.choices) == "One two three four."
    assert [c.choices[0].finish_reason for c in chunks if c.choices
            and c.choices[0].finish_reason] == ["stop"]
    with_usage = [c for c in chunks if c.usage is not None]
    if not include_usage:
        assert with_usage == []
        return
    assert with_usage == [chunks[-1]] and chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("kind", KINDS)
async def test_async_create_and_stream(live: FakesGateway, async_client: openai.AsyncOpenAI,
                                       kind: str) -> None:
    script_text(kind, live.fakes, "Async hello.")
    completion = await async_client.chat.completions.create(
        model=text_model(kind), messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "Async hello."
    script_text(kind, live.fakes, "Async stream.", chunks=2)
    stream = await async_client.chat.completions.create(
        model=text_model(kind), messages=[{"role": "user", "content": "Hi"}], stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert len(pieces) >= 2 and "".join(pieces) == "Async stream."


@pytest.mark.parametrize("kind", KINDS)
def test_tool_call_then_its_result(live: FakesGateway, client: openai.OpenAI,
                                   kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    first = client.chat.completions.create(model=text_model(kind), messages=[QUESTION],
                                           tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = function_calls(first.choices[0].message)
    assert call.id and call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Lima"}
    script_text(kind, live.fakes, "It is 21.5 degrees in Lima.")
    final = client.chat.completions.create(
        model=text_model(kind), tools=[WEATHER_TOOL], messages=[
            QUESTION, assistant_turn([call]),
            {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21.5}'}])
    assert final.choices[0].message.content == "It is 21.5 degrees in Lima."
    assert final.choices[0].finish_reason == "stop"
    assert_results_paired(kind, live.fakes, {call.id: "get_weather"}, ["21.5"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_tool_call_accumulates(live: FakesGateway, client: openai.OpenAI,
                                          kind: str) -> None:
    script_streamed_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    with client.chat.completions.stream(model=text_model(kind), messages=[QUESTION],
                                        tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    (call,) = function_calls(final.choices[0].message)
    assert call.id and call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Lima"}


@pytest.mark.parametrize("kind", KINDS)
def test_parallel_tool_calls(live: FakesGateway, client: openai.OpenAI, kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"}),
                                    ("get_weather", {"city": "Oslo"})])
    question: ChatCompletionMessageParam = {"role": "user", "content": "Lima and Oslo?"}
    first = client.chat.completions.create(model=text_model(kind), messages=[question],
                                           tools=[WEATHER_TOOL])
    calls = function_calls(first.choices[0].message)
    assert [orjson.loads(c.function.arguments) for c in calls] == [{"city": "Lima"},
                                                                   {"city": "Oslo"}]
    assert len({c.id for c in calls}) == 2 and all(c.id for c in calls)
    script_text(kind, live.fakes, "Lima 20, Oslo 3.")
    results: list[ChatCompletionMessageParam] = [
        {"role": "tool", "tool_call_id": c.id, "content": f'{{"celsius": {t}}}'}
        for c, t in zip(calls, (20, 3), strict=True)]
    final = client.chat.completions.create(
        model=text_model(kind), tools=[WEATHER_TOOL],
        messages=[question, assistant_turn(calls), *results])
    assert final.choices[0].message.content == "Lima 20, Oslo 3."
    assert_results_paired(kind, live.fakes, {c.id: "get_weather" for c in calls}, ["20", "3"])


@pytest.mark.parametrize("kind", KINDS)
def test_parse_into_a_pydantic_model(live: FakesGateway, client: openai.OpenAI,
                                     kind: str) -> None:
    city = {"name": "Lima", "population": 10000000}
    if kind == "anthropic":  # constrained output comes back as one forced tool call
        live.fakes.anthropic.replies.append(anthropic.Reply(
            text=None, stop_reason="tool_use", tool_calls=[{"name": "respond", "input": city}]))
    else:
        script_text(kind, live.fakes, orjson.dumps(city).decode())
    completion = client.chat.completions.parse(
        model=text_model(kind), messages=[{"role": "user", "content": "A big city"}],
        response_format=City)
    message = completion.choices[0].message
    assert message.parsed == City(name="Lima", population=10000000)
    assert completion.choices[0].finish_reason == "stop" and not message.tool_calls
    sent = received(kind, live.fakes)
    if kind == "openai":
        assert sent["response_format"]["json_schema"]["name"] == "City"
    elif kind == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "respond"}
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"


def test_the_server_root_as_base_url(live: FakesGateway) -> None:
    """Clients configured without /v1 post to /chat/completions."""
    live.clear_scripts()
    script_text("gemini", live.fakes, "From the root.")
    with openai.OpenAI(api_key=live.gateway.key, base_url=live.gateway.base_url,
                       max_retries=0) as rooted:
        completion = rooted.chat.completions.create(
            model="gemini-text", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "From the root."


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert sorted(m.id for m in models) == sorted(
        f"{kind}-{use}" for kind in KINDS for use in ("text", "limited"))
    assert all(m.object == "model" for m in models)
    assert client.models.retrieve("anthropic-text").id == "anthropic-text"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_wrong_key_is_an_authentication_error(live: FakesGateway) -> None:
    before = request_count("openai", live.fakes)
    with sdk(live.gateway, key="cg-not-a-key-of-this-gateway") as stranger, pytest.raises(
            openai.AuthenticationError) as raised:
        stranger.chat.completions.create(model="openai-text",
                                          messages=[{"role": "user", "content": "Hi"}])
    assert (raised.value.status_code, raised.value.code) == (401, "invalid_api_key")
    assert isinstance(raised.value.body, dict) and raised.value.body["message"]
    assert request_count("openai", live.fakes) == before


def test_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-model",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert (raised.value.status_code, raised.value.code) == (404, "model_not_found")
    assert "no-such-model" in raised.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_429_is_a_rate_limit_error(live: FakesGateway, client: openai.OpenAI,
                                               kind: str) -> None:
    before = request_count(kind, live.fakes)
    script_error(kind, live.fakes, 429)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=f"{kind}-limited",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert (raised.value.status_code, raised.value.code) == (429, "rate_limit_exceeded")
    assert request_count(kind, live.fakes) == before + 1  # it did reach the upstream


def test_one_usage_record_in_the_openai_dialect(live: FakesGateway,
                                                client: openai.OpenAI) -> None:
    script_text("anthropic", live.fakes, "Counted.")
    raw = client.chat.completions.with_raw_response.create(
        model="anthropic-text", messages=[{"role": "user", "content": "Hi"}])
    completion = raw.parse()
    usage = completion.usage
    assert usage is not None
    (record,) = records_of(live.gateway, raw.headers["x-request-id"])
    assert (record["dialect"], record["model"], record["provider"], record["status"]) == (
        "openai", "anthropic-text", "anthropic", "200")
    assert (int(record["prompt_tokens"]), int(record["output_tokens"])) == (
        usage.prompt_tokens, usage.completion_tokens)


# --- the real local model --------------------------------------------------------------------

SHORT: dict[str, Any] = {"max_tokens": 16, "temperature": 0.0, "seed": 7}


class Verdict(pydantic.BaseModel):
    positive: bool


@pytest.fixture
def local(gateway: LiveGateway) -> Iterator[openai.OpenAI]:
    with sdk(gateway) as opened:
        yield opened


@pytest.mark.model
def test_local_create(local: openai.OpenAI) -> None:
    completion = local.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hi"}], **SHORT)
    (choice,) = completion.choices
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    usage = completion.usage
    assert usage is not None and 0 < usage.completion_tokens <= SHORT["max_tokens"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert completion.model == MODEL


@pytest.mark.model
def test_local_stream(local: openai.OpenAI) -> None:
    chunks = list(local.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to five"}], stream=True,
        stream_options={"include_usage": True}, **SHORT))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    reasons = [c.choices[0].finish_reason for c in chunks
               if c.choices and c.choices[0].finish_reason]
    assert len(reasons) == 1 and reasons[0] in {"stop", "length"}
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0


@pytest.mark.model
def test_local_parse_is_constrained_by_the_schema(local: openai.OpenAI) -> None:
    completion = local.chat.completions.parse(
        model=MODEL, response_format=Verdict, max_tokens=64, temperature=0.0, seed=7,
        messages=[{"role": "user", "content": "Is the sun hot? Answer in JSON."}])
    assert isinstance(completion.choices[0].message.parsed, Verdict)
