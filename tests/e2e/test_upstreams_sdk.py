"""google-genai (sync and async) against a live `cometgate serve` whose models reach the three
fake upstreams — OpenAI, Anthropic, Gemini — served by uvicorn on loopback ports in a thread of
this process. No local model: the config file replaces the models section."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydantic
import pytest
from google import genai
from google.genai import types

from tests.contract.conftest import KINDS, Fakes
from tests.contract.scenarios import script_calls, script_text
from tests.e2e.conftest import LiveGateway
from tests.e2e.fake_upstreams_live import serve_before_fakes
from tests.fakes import anthropic_upstream as anthropic


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    clients: list[genai.Client]

    def client(self) -> genai.Client:
        """A new client, kept alive by `self`: a collected Client closes its HTTP pool."""
        client = genai.Client(api_key=self.gateway.key, http_options=types.HttpOptions(
            base_url=self.gateway.base_url, api_version="v1beta", timeout=30_000))
        self.clients.append(client)
        return client


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    for running in serve_before_fakes(tmp_path_factory, pytestconfig, "upstreams"):
        yield Live(running.gateway, running.fakes, [])


@pytest.fixture(autouse=True)
def clean_scripts(live: Live) -> None:
    for fake in (live.fakes.openai, live.fakes.anthropic, live.fakes.gemini):
        fake.replies.clear()


def get_weather(city: str) -> dict[str, float]:
    """Current temperature in a city, in Celsius."""
    return {"celsius": 21.5 if city == "Lima" else 0.0}


class City(pydantic.BaseModel):
    name: str
    population: int


def model(kind: str) -> str:
    return f"{kind}-text"


@pytest.mark.parametrize("kind", KINDS)
def test_generate(live: Live, kind: str) -> None:
    script_text(kind, live.fakes, "Hello through the gateway.")
    response = live.client().models.generate_content(model=model(kind), contents="Hi")
    assert response.text == "Hello through the gateway."
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata and response.usage_metadata.prompt_token_count


@pytest.mark.parametrize("kind", KINDS)
def test_stream(live: Live, kind: str) -> None:
    script_text(kind, live.fakes, "One two three four.", chunks=4)
    chunks = list(live.client().models.generate_content_stream(model=model(kind),
                                                                contents="Count"))
    assert len(chunks) >= 2
    assert "".join(c.text or "" for c in chunks) == "One two three four."
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("kind", KINDS)
async def test_async_generate_and_stream(live: Live, kind: str) -> None:
    client = live.client().aio
    try:
        script_text(kind, live.fakes, "Async hello.")
        response = await client.models.generate_content(model=model(kind), contents="Hi")
        assert response.text == "Async hello."
        script_text(kind, live.fakes, "Async stream.", chunks=2)
        stream = await client.models.generate_content_stream(model=model(kind), contents="Hi")
        assert "".join([chunk.text or "" async for chunk in stream]) == "Async stream."
    finally:
        await client.aclose()  # its connections belong to this test's event loop


WEATHER_TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current temperature in a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]})])


@pytest.mark.parametrize("kind", KINDS)
def test_function_calling_with_the_result_fed_back(live: Live, kind: str) -> None:
    client = live.client()
    config = types.GenerateContentConfig(tools=[WEATHER_TOOL])
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Lima?")])
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    response = client.models.generate_content(model=model(kind), contents=[question],
                                              config=config)
    (call,) = response.function_calls or []
    assert (call.name, call.args) == ("get_weather", {"city": "Lima"})
    assert response.candidates and response.candidates[0].content
    answer = types.Part.from_function_response(name="get_weather",
                                               response=get_weather("Lima"))
    if call.id:
        answer.function_response.id = call.id  # type: ignore[union-attr]
    script_text(kind, live.fakes, "It is 21.5 degrees in Lima.")
    final = client.models.generate_content(
        model=model(kind), config=config,
        contents=[question, response.candidates[0].content,
                  types.Content(role="user", parts=[answer])])
    assert final.text == "It is 21.5 degrees in Lima."
    sent = str(received_last(live, kind))
    assert "21.5" in sent  # the result reached the upstream


@pytest.mark.parametrize("kind", KINDS)
def test_automatic_function_calling(live: Live, kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    script_text(kind, live.fakes, "Lima: 21.5 degrees.")
    response = live.client().models.generate_content(
        model=model(kind), contents="Weather in Lima?",
        config=types.GenerateContentConfig(tools=[get_weather]))
    assert response.text == "Lima: 21.5 degrees."
    history = response.automatic_function_calling_history or []
    assert [p.function_response.response for c in history for p in c.parts or []
            if p.function_response] == [{"result": {"celsius": 21.5}}]
    assert "21.5" in str(received_last(live, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_json_with_a_pydantic_schema(live: Live, kind: str) -> None:
    city = {"name": "Lima", "population": 10000000}
    if kind == "anthropic":  # constrained output comes back as one forced tool call
        live.fakes.anthropic.replies.append(anthropic.Reply(
            text=None, stop_reason="tool_use", tool_calls=[{"name": "respond", "input": city}]))
    else:
        script_text(kind, live.fakes, '{"name": "Lima", "population": 10000000}')
    response = live.client().models.generate_content(
        model=model(kind), contents="A big city",
        config=types.GenerateContentConfig(response_mime_type="application/json",
                                           response_schema=City))
    assert response.parsed == City(name="Lima", population=10000000)


@pytest.mark.parametrize("kind", ["gemini", "anthropic"])
def test_count_tokens(live: Live, kind: str) -> None:
    """The fakes count one token per word they received: "How warm is Lima today" (5).
    An Anthropic upstream counts through its own count_tokens."""
    counted = live.client().models.count_tokens(model=model(kind),
                                                contents="How warm is Lima today")
    assert counted.total_tokens == 5
    if kind == "anthropic":
        assert live.fakes.anthropic.requests[-1]["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "How warm is Lima today"}]}]


async def test_async_count_tokens(live: Live) -> None:
    client = live.client().aio
    try:
        counted = await client.models.count_tokens(model=model("anthropic"),
                                                    contents=["one two", "three"])
    finally:
        await client.aclose()
    assert counted.total_tokens == 3


def test_count_tokens_where_no_exact_count_exists(live: Live) -> None:
    before = len(live.fakes.openai.requests)
    with pytest.raises(genai.errors.ClientError) as raised:
        live.client().models.count_tokens(model=model("openai"), contents="Hi")
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    assert raised.value.message is not None
    assert raised.value.message.startswith("Token counting is not available for openai-text: "
                                           "provider openai gives no exact count")
    assert "`tokenize_endpoint: true`" in raised.value.message
    assert len(live.fakes.openai.requests) == before


def received_last(live: Live, kind: str) -> object:
    if kind == "gemini":
        return live.fakes.gemini.requests[-1].body.decode()
    return getattr(live.fakes, kind).requests[-1]


def test_the_config_holds_no_local_model(live: Live) -> None:
    models = [str(m.name) for m in live.client().models.list()]
    assert sorted(models) == sorted(f"models/{kind}-text" for kind in KINDS)
    assert Path(live.gateway.data_dir).is_dir()
