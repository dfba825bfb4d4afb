"""The `anthropic` SDK (sync and async) against live gateways.

One gateway's models reach the three fake upstreams; an Anthropic caller's request is passed
through to the Anthropic upstream (only the model rewritten) and translated through the
canonical model for the others. The other gateway serves the real local model, whose wording
is never asserted — only structure, stop reasons and usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import Message, MessageParam, TextBlock, ToolParam, ToolUseBlock

from tests.contract.conftest import KINDS
from tests.contract.scenarios import request_count, script_calls, script_error, script_text
from tests.e2e.conftest import MODEL, LiveGateway
from tests.e2e.fake_upstreams_live import (
    FakesGateway,
    assert_results_paired,
    records_of,
    script_streamed_calls,
    sent_instructions_and_question,
    serve_before_fakes,
)

MAX_TOKENS = 256
QUESTION: MessageParam = {"role": "user", "content": "Weather in Lima?"}
WEATHER_TOOL: ToolParam = {
    "name": "get_weather", "description": "Current temperature in a city, in Celsius",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}


def sdk(gateway: LiveGateway, key: str | None = None) -> anthropic.Anthropic:
    # No retries: a refusal must surface as the exception of its one answer.
    return anthropic.Anthropic(api_key=key or gateway.key, base_url=gateway.base_url,
                               max_retries=0, timeout=60.0)


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[FakesGateway]:
    yield from serve_before_fakes(tmp_path_factory, pytestconfig, "anthropic-sdk",
                                  limited=True)


@pytest.fixture
def client(live: FakesGateway) -> Iterator[anthropic.Anthropic]:
    live.clear_scripts()
    with sdk(live.gateway) as opened:
        yield opened


@pytest.fixture
async def async_client(live: FakesGateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    live.clear_scripts()
    async with anthropic.AsyncAnthropic(api_key=live.gateway.key, base_url=live.gateway.base_url,
                                        max_retries=0, timeout=60.0) as opened:
        yield opened  # its connections belong to this test's event loop


def text_model(kind: str) -> str:
    return f"{kind}-text"


def text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


def tool_uses(message: Message) -> list[ToolUseBlock]:
    return [block for block in message.content if isinstance(block, ToolUseBlock)]


def assert_usage(message: Message) -> None:
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


# --- the fake upstreams ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_create(live: FakesGateway, client: anthropic.Anthropic, kind: str) -> None:
    script_text(kind, live.fakes, "Hello through the gateway.")
    message = client.messages.create(model=text_model(kind), max_tokens=MAX_TOKENS,
                                     system="Be brief.",
                                     messages=[{"role": "user", "content": "Say hello"}])
    assert (message.type, message.role, message.model) == ("message", "assistant",
                                                           text_model(kind))
    assert [(b.type, text_of(message)) for b in message.content] == [
        ("text", "Hello through the gateway.")]
    assert message.stop_reason == "end_turn"
    assert_usage(message)
    assert sent_instructions_and_question(kind, live.fakes) == ("Be brief.", "Say hello")


@pytest.mark.parametrize("kind", KINDS)
def test_stream(live: FakesGateway, client: anthropic.Anthropic, kind: str) -> None:
    script_text(kind, live.fakes, "One two three four.", chunks=4)
    with client.messages.stream(model=text_model(kind), max_tokens=MAX_TOKENS,
                                messages=[{"role": "user", "content": "Count"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 2 and "".join(pieces) == "One two three four."
    assert text_of(final) == "One two three four."
    assert final.stop_reason == "end_turn"
    assert_usage(final)


@pytest.mark.parametrize("kind", KINDS)
async def test_async_create_and_stream(live: FakesGateway,
                                       async_client: anthropic.AsyncAnthropic,
                                       kind: str) -> None:
    script_text(kind, live.fakes, "Async hello.")
    message = await async_client.messages.create(
        model=text_model(kind), max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": "Hi"}])
    assert text_of(message) == "Async hello."
    script_text(kind, live.fakes, "Async stream.", chunks=2)
    async with async_client.messages.stream(
            model=text_model(kind), max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": "Hi"}]) as stream:
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == text_of(final) == "Async stream."


@pytest.mark.parametrize("kind", KINDS)
def test_tool_use_then_its_result(live: FakesGateway, client: anthropic.Anthropic,
                                  kind: str) -> None:
    script_calls(kind, live.fakes, [("get_weather", {"city": "Lima"})])
    first = client.messages.create(model=text_model(kind), max_tokens=MAX_TOKENS,
                                   messages=[QUESTION], tools=[WEATHER_TOOL])
    assert first.stop_reason == "tool_use"
    (use,) = tool_uses(first)
    assert use.id and (use.name, use.input) == ("get_weather", {"city": "Lima"})
    script_text(kind, live.fakes, "It is 21.5 degrees in Lima.")
    final = client.messages.create(
        model=text_model(kind), max_tokens=MAX_TOKENS, tools=[WEATHER_TOOL], messages=[
            QUESTION, {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                          "content": '{"celsius": 21.5}'}]}])
    assert text_of(final) == "It is 21.5 degrees in Lima."
    assert final.stop_reason == "end_turn"
    assert_results_paired(kind, live.fakes, {use.id: "get_weather"}, ["21.5"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_streamed_tool_use_accumulates(live: FakesGateway, client: anthropic.Anthropic,
                                         kind: str) -> None:
    script_streamed_calls(kind, live.fakes, [("get_weather", {"city": "Lima"}),
                                             ("get_weather", {"city": "Oslo"})])
    with client.messages.stream(model=text_model(kind), max_tokens=MAX_TOKENS,
                                messages=[QUESTION], tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = tool_uses(final)
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Lima"}),
                                                 ("get_weather", {"city": "Oslo"})]
    assert len({u.id for u in uses}) == 2 and all(u.id for u in uses)


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_count_tokens(live: FakesGateway, client: anthropic.Anthropic, kind: str) -> None:
    """The fakes count one token per word they received: the system prompt (3), the
    question (3), the tool's name and description (1 + 7)."""
    counted = client.messages.count_tokens(model=text_model(kind), system="Answer very briefly",
                                           messages=[QUESTION], tools=[WEATHER_TOOL])
    assert counted.input_tokens == 3 + 3 + 1 + 7


def test_beta_count_tokens_reaches_anthropic_as_sent(live: FakesGateway,
                                                     client: anthropic.Anthropic) -> None:
    """The beta namespace, with its beta flag (langchain-anthropic's token counting has
    called it)."""
    counted = client.beta.messages.count_tokens(
        model="anthropic-text", messages=[QUESTION], betas=["token-counting-2024-11-01"])
    assert counted.input_tokens == 3
    fake = live.fakes.anthropic
    assert fake.headers[-1]["anthropic-beta"] == "token-counting-2024-11-01"
    assert fake.requests[-1] == {"model": "claude-up", "messages": [QUESTION]}


async def test_async_count_tokens(async_client: anthropic.AsyncAnthropic) -> None:
    counted = await async_client.messages.count_tokens(model="anthropic-text",
                                                       messages=[QUESTION])
    assert counted.input_tokens == 3


def test_count_tokens_where_no_exact_count_exists(live: FakesGateway,
                                                  client: anthropic.Anthropic) -> None:
    before = request_count("openai", live.fakes)
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.count_tokens(model="openai-text",
                                     messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.status_code == 400
    body = raised.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(
        "Token counting is not available for openai-text: provider openai gives no exact count")
    assert "`tokenize_endpoint: true`" in body["error"]["message"]
    assert request_count("openai", live.fakes) == before


def test_models_list_and_retrieve(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    assert sorted(m.id for m in models) == sorted(
        f"{kind}-{use}" for kind in KINDS for use in ("text", "limited"))
    assert all(m.type == "model" for m in models)
    assert client.models.retrieve("gemini-text").id == "gemini-text"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("no-such-model")


def test_a_wrong_key_is_an_authentication_error(live: FakesGateway) -> None:
    before = request_count("anthropic", live.fakes)
    with sdk(live.gateway, key="cg-not-a-key-of-this-gateway") as stranger, pytest.raises(
            anthropic.AuthenticationError) as raised:
        stranger.messages.create(model="anthropic-text", max_tokens=MAX_TOKENS,
                                 messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.status_code == 401
    body = raised.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "authentication_error"
    assert request_count("anthropic", live.fakes) == before


def test_an_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.messages.create(model="no-such-model", max_tokens=MAX_TOKENS,
                               messages=[{"role": "user", "content": "Hi"}])
    body = raised.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_429_is_a_rate_limit_error(live: FakesGateway, client: anthropic.Anthropic,
                                               kind: str) -> None:
    before = request_count(kind, live.fakes)
    script_error(kind, live.fakes, 429)
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=f"{kind}-limited", max_tokens=MAX_TOKENS,
                               messages=[{"role": "user", "content": "Hi"}])
    body = raised.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "rate_limit_error"
    assert request_count(kind, live.fakes) == before + 1  # it did reach the upstream


def test_one_usage_record_in_the_anthropic_dialect(live: FakesGateway,
                                                   client: anthropic.Anthropic) -> None:
    script_text("openai", live.fakes, "Counted.")
    raw = client.messages.with_raw_response.create(
        model="openai-text", max_tokens=MAX_TOKENS,
        messages=[{"role": "user", "content": "Hi"}])
    message = raw.parse()
    (record,) = records_of(live.gateway, raw.headers["x-request-id"])
    assert (record["dialect"], record["model"], record["provider"], record["status"]) == (
        "anthropic", "openai-text", "openai", "200")
    assert (int(record["prompt_tokens"]), int(record["output_tokens"])) == (
        message.usage.input_tokens, message.usage.output_tokens)


# --- the Anthropic pass-through ---------------------------------------------------------------

BETA = "context-management-2025-06-27"


@pytest.fixture
def recording_client(live: FakesGateway) -> Iterator[tuple[anthropic.Anthropic,
                                                            list[httpx2.Request]]]:
    """A client that keeps every request it sends, to compare with what the upstream got."""
    live.clear_scripts()
    sent: list[httpx2.Request] = []
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [sent.append]})
    with anthropic.Anthropic(api_key=live.gateway.key, base_url=live.gateway.base_url,
                             max_retries=0, timeout=60.0, http_client=http) as opened:
        yield opened, sent


@pytest.mark.parametrize("stream", [False, True])
def test_beta_features_pass_through_unchanged(
    live: FakesGateway, recording_client: tuple[anthropic.Anthropic, list[httpx2.Request]],
    stream: bool,
) -> None:
    client, sent = recording_client
    script_text("anthropic", live.fakes, "Passed through.", chunks=2)
    fields: dict[str, Any] = {
        "model": "anthropic-text", "max_tokens": MAX_TOKENS, "betas": [BETA],
        "messages": [{"role": "user", "content": "Hi"}],
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "low"},
        "metadata": {"user_id": "user-1"}, "extra_query": {"beta": "true"}}
    if stream:
        with client.beta.messages.stream(**fields) as events:
            text = "".join(events.text_stream)
            message = events.get_final_message()
    else:
        message = client.beta.messages.create(**fields)
        text = "".join(b.text for b in message.content if b.type == "text")
    assert (text, message.model, message.stop_reason) == (
        "Passed through.", "anthropic-text", "end_turn")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    fake = live.fakes.anthropic
    request = sent[-1]
    assert fake.bodies[-1] == request.content.replace(b'"model":"anthropic-text"',
                                                      b'"model":"claude-up"')
    assert fake.headers[-1]["anthropic-beta"] == BETA
    assert fake.headers[-1]["anthropic-version"] == request.headers["anthropic-version"]
    assert fake.headers[-1]["x-api-key"] == "secret-anthropic"
    assert fake.queries[-1] == "beta=true"


def test_an_anthropic_refusal_passes_through(
    live: FakesGateway, recording_client: tuple[anthropic.Anthropic, list[httpx2.Request]],
) -> None:
    client, _ = recording_client
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.beta.messages.create(  # the fake refuses a budget below 1024, as Anthropic does
            model="anthropic-text", max_tokens=MAX_TOKENS, betas=[BETA],
            thinking={"type": "enabled", "budget_tokens": 100},
            messages=[{"role": "user", "content": "Hi"}])
    body = raised.value.body
    assert isinstance(body, dict) and body["request_id"] == "req_fake0001"
    assert body["error"] == {"type": "invalid_request_error",
                             "message": "thinking.budget_tokens: must be ≥ 1024 and < max_tokens"}


# --- the real local model --------------------------------------------------------------------

SHORT = 16  # max_tokens for anything that only needs some text back


@pytest.fixture
def local(gateway: LiveGateway) -> Iterator[anthropic.Anthropic]:
    with sdk(gateway) as opened:
        yield opened


@pytest.mark.model
def test_local_create(local: anthropic.Anthropic) -> None:
    message = local.messages.create(model=MODEL, max_tokens=SHORT,
                                    messages=[{"role": "user", "content": "Say hi"}])
    assert text_of(message).strip()
    assert message.stop_reason in {"end_turn", "max_tokens"}
    assert 0 < message.usage.output_tokens <= SHORT
    assert message.usage.input_tokens > 0


@pytest.mark.model
def test_local_stream(local: anthropic.Anthropic) -> None:
    with local.messages.stream(model=MODEL, max_tokens=SHORT,
                               messages=[{"role": "user", "content": "Count to five"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and text == text_of(final)
    assert final.stop_reason in {"end_turn", "max_tokens"}
    assert_usage(final)


@pytest.mark.model
def test_local_count_tokens(local: anthropic.Anthropic) -> None:
    short = local.messages.count_tokens(model=MODEL, messages=[{"role": "user",
                                                                "content": "Hi"}])
    longer = local.messages.count_tokens(model=MODEL, messages=[
        {"role": "user", "content": "Hi, please tell me a long story about the sea."}])
    assert 0 < short.input_tokens < longer.input_tokens


@pytest.mark.model
def test_local_counts_alike_on_both_counting_routes(gateway: LiveGateway,
                                                    local: anthropic.Anthropic) -> None:
    """The model's own tokenizer and chat template count the same prompt the same way,
    whichever dialect asks."""
    counted = local.messages.count_tokens(model=MODEL, system="Be brief.", messages=[
        {"role": "user", "content": "Name a colour."}])
    inner = {"model": f"models/{MODEL}", "systemInstruction": {"parts": [{"text": "Be brief."}]},
             "contents": [{"role": "user", "parts": [{"text": "Name a colour."}]}]}
    gemini = httpx.post(f"{gateway.base_url}/v1beta/models/{MODEL}:countTokens",
                        json={"generateContentRequest": inner},
                        headers={"x-goog-api-key": gateway.key}, timeout=60.0)
    assert gemini.status_code == 200, gemini.text
    assert gemini.json()["totalTokens"] == counted.input_tokens > 0
