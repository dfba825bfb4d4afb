"""The Anthropic codec end to end: HttpProvider → the in-process fake Anthropic server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream, Reply, signature_for

from cometgate.canonical import (
    BlobPart,
    CandidateFinished,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    GenerateResponse,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.anthropic import AnthropicCodec, AnthropicOptions
from cometgate.errors import FailureClass, UpstreamError
from cometgate.providers.base import Target
from cometgate.providers.http import HttpProvider
from cometgate.providers.timeouts import Timeouts

TARGET = Target(upstream_model="claude-test", model_version="alias", credential="sk-ant-test")
FAST = Timeouts(connect=2.0, first_byte=5.0, idle=5.0, total=10.0)
WEATHER = FunctionTool("get_weather", "Weather in a city",
                       {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]})


@pytest.fixture
def fake() -> FakeAnthropicUpstream:
    return FakeAnthropicUpstream()


@pytest.fixture
async def provider(fake: FakeAnthropicUpstream) -> AsyncIterator[HttpProvider]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
    codec = AnthropicCodec(AnthropicOptions(beta=("interleaved-thinking-2025-05-14",)))
    provider = HttpProvider("anthropic", base_url="http://anthropic.test/", codec=codec,
                            timeouts=FAST, client=client)
    yield provider
    await provider.aclose()
    await client.aclose()


def ask(*messages: Message, **fields: object) -> GenerateRequest:
    return GenerateRequest(model="alias", messages=messages, **fields)  # type: ignore[arg-type]


def user(*parts: Part) -> Message:
    return Message("user", parts)


async def collect(provider: HttpProvider, request: GenerateRequest,
                  target: Target = TARGET) -> list[StreamEvent]:
    return [event async for event in provider.stream(request, target)]


def answer(response: GenerateResponse) -> tuple[Part, ...]:
    return response.candidates[0].parts


async def test_text_with_headers_system_and_usage(fake: FakeAnthropicUpstream,
                                                  provider: HttpProvider) -> None:
    fake.replies.append(Reply(text="Bonjour", input_tokens=11, cache_read_tokens=4,
                              output_tokens=2))
    response = await provider.generate(
        ask(user(TextPart("hello")), system=(TextPart("Answer in French."),)), TARGET)
    assert answer(response) == (TextPart("Bonjour"),)
    assert response.candidates[0].finish_reason is FinishReason.STOP
    assert response.usage == Usage(prompt_tokens=15, output_tokens=2, cached_tokens=4)
    headers = fake.headers[0]
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "authorization" not in headers
    assert fake.requests[0]["system"] == [{"type": "text", "text": "Answer in French."}]
    assert fake.requests[0]["model"] == "claude-test"


async def test_multi_turn_and_image(fake: FakeAnthropicUpstream,
                                    provider: HttpProvider) -> None:
    request = ask(user(TextPart("What is this?"), BlobPart("image/png", b"\x89PNG")),
                  Message("assistant", (TextPart("A picture."),)),
                  user(TextPart("Of what?")), user(TextPart("Be precise.")))
    await provider.generate(request, TARGET)
    sent = fake.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"][1]["source"] == {"type": "base64", "media_type": "image/png",
                                               "data": "iVBORw=="}
    assert len(sent[2]["content"]) == 2


async def test_parallel_tool_calls_then_gemini_style_results_without_ids(
        fake: FakeAnthropicUpstream, provider: HttpProvider) -> None:
    fake.replies.append(Reply(text=None, stop_reason="tool_use", tool_calls=[
        {"name": "get_weather", "input": {"city": "Paris"}},
        {"name": "get_weather", "input": {"city": "Rome"}}]))
    first = ask(user(TextPart("Weather in Paris and Rome?")), tools=(WEATHER,))
    response = await provider.generate(first, TARGET)
    calls = answer(response)
    assert [(c.name, c.arguments) for c in calls if isinstance(c, ToolCallPart)] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert response.candidates[0].finish_reason is FinishReason.STOP
    # google-genai's automatic function calling sends the calls back as they came but the
    # results without ids; the fake refuses results that answer no call.
    results = user(ToolResultPart("get_weather", {"output": "rain"}),
                   ToolResultPart("get_weather", {"output": "sun"}))
    second = replace(first, messages=(*first.messages, Message("assistant", calls), results))
    final = await provider.generate(second, TARGET)
    assert answer(final) == (TextPart("Hello from the fake upstream."),)
    sent = fake.requests[1]["messages"][2]["content"]
    assert [b["tool_use_id"] for b in sent] == ["toolu_fake1_0", "toolu_fake1_1"]


async def test_two_turn_tool_loop_with_hidden_thinking(fake: FakeAnthropicUpstream,
                                                       provider: HttpProvider) -> None:
    fake.replies += [Reply(text=None, thinking="Paris: call the tool.", stop_reason="tool_use",
                           tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}]),
                     Reply(text="It rains in Paris.", thinking="Summarise the result.")]
    first = ask(user(TextPart("Weather in Paris?")), tools=(WEATHER,),
                thinking=ThinkingConfig(budget=2048))
    response = await provider.generate(first, TARGET)
    (call,) = answer(response)
    assert isinstance(call, ToolCallPart) and call.signature is not None
    assert fake.requests[0]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # The caller keeps the model turn as it came (signature on the call part) and answers.
    second = replace(first, messages=(
        *first.messages, Message("assistant", (call,)),
        user(ToolResultPart("get_weather", {"output": "rain"}, call.call_id))))
    final = await provider.generate(second, TARGET)
    assert [p.text for p in answer(final) if isinstance(p, TextPart)] == ["It rains in Paris."]
    returned = fake.requests[1]["messages"][1]["content"]
    assert returned[0] == {"type": "thinking", "thinking": "Paris: call the tool.",
                           "signature": signature_for("Paris: call the tool.")}
    assert returned[1]["type"] == "tool_use"
    # Without the carried thinking, Anthropic (and the fake) refuse the continuation.
    stripped = replace(second, messages=(
        *first.messages, Message("assistant", (replace(call, signature=None),)),
        second.messages[-1]))
    with pytest.raises(UpstreamError) as raised:
        await provider.generate(stripped, TARGET)
    assert raised.value.failure_class is FailureClass.CALLER_FAULT
    assert "must start with a thinking block" in raised.value.message


async def test_two_turn_streamed_tool_loop_with_shown_thinking(
        fake: FakeAnthropicUpstream, provider: HttpProvider) -> None:
    fake.replies += [Reply(text=None, thinking="Look it up.", redacted="opaque-data",
                           stop_reason="tool_use",
                           tool_calls=[{"name": "get_weather", "input": {"city": "Oslo"}}]),
                     Reply(text="Snow in Oslo.")]
    first = ask(user(TextPart("Oslo?")), tools=(WEATHER,),
                thinking=ThinkingConfig(include_thoughts=True, level="LOW"))
    events = await collect(provider, first)
    parts = [e.part for e in events if isinstance(e, PartDelta)]
    reasoning = [p for p in parts if isinstance(p, ReasoningPart)]
    assert "".join(p.text for p in reasoning) == "Look it up."
    assert sum(p.signature is not None for p in reasoning) == 2  # thinking + redacted
    # A client that keeps every streamed part as it came sends them all back.
    second = replace(first, messages=(
        *first.messages, Message("assistant", tuple(parts)),
        user(ToolResultPart("get_weather", {"output": "snow"}))))
    final = await provider.generate(second, TARGET)
    assert answer(final) == (TextPart("Snow in Oslo."),)
    assert final.dropped == ()
    returned = fake.requests[1]["messages"][1]["content"]
    assert [b["type"] for b in returned] == ["thinking", "redacted_thinking", "tool_use"]
    assert returned[1]["data"] == "opaque-data"


async def test_json_output_through_the_forced_tool(fake: FakeAnthropicUpstream,
                                                   provider: HttpProvider) -> None:
    fake.replies.append(Reply(text=None, stop_reason="tool_use", tool_calls=[
        {"name": "respond", "input": {"value": ["a", "b"]}}]))
    request = ask(user(TextPart("List two letters")),
                  output=OutputFormat("json", {"type": "array", "items": {"type": "string"}}))
    response = await provider.generate(request, TARGET)
    assert answer(response) == (TextPart('["a","b"]'),)
    assert fake.requests[0]["tool_choice"] == {"type": "tool", "name": "respond"}


async def test_stream_text(fake: FakeAnthropicUpstream, provider: HttpProvider) -> None:
    fake.replies.append(Reply(text="one two three", chunks=3, input_tokens=9,
                              output_tokens=3))
    events = await collect(provider, ask(user(TextPart("count"))))
    assert isinstance(events[0], StreamStarted)
    assert "".join(e.part.text for e in events if isinstance(e, PartDelta)
                   and isinstance(e.part, TextPart)) == "one two three"
    assert events[-2:] == [CandidateFinished(FinishReason.STOP),
                           UsageReported(Usage(prompt_tokens=9, output_tokens=3))]
    assert fake.requests[0]["stream"] is True


async def test_dropped_fields_are_reported(fake: FakeAnthropicUpstream,
                                           provider: HttpProvider) -> None:
    request = ask(user(TextPart("hi")), params=GenerationParams(seed=3))
    response = await provider.generate(request, TARGET)
    assert response.dropped == ("params.seed: Anthropic has no seed",)
    events = await collect(provider, request)
    assert isinstance(events[0], StreamStarted) and events[0].dropped == response.dropped


@pytest.mark.parametrize(("reply", "failure", "http_status"), [
    (Reply(status=400), FailureClass.CALLER_FAULT, 400),
    (Reply(status=500, error_type="api_error"), FailureClass.TRANSIENT, 503),
    (Reply(status=529, error_type="overloaded_error"), FailureClass.TRANSIENT, 503),
    (Reply(status=403, error_type="permission_error"), FailureClass.CALLER_FAULT, 403),
    (Reply(status=401, error_type="authentication_error"), FailureClass.CREDENTIAL, 503),
])
async def test_error_answers(fake: FakeAnthropicUpstream, provider: HttpProvider, reply: Reply,
                             failure: FailureClass, http_status: int) -> None:
    for stream in (False, True):
        fake.replies.append(reply)
        with pytest.raises(UpstreamError) as raised:
            if stream:
                await collect(provider, ask(user(TextPart("hi"))))
            else:
                await provider.generate(ask(user(TextPart("hi"))), TARGET)
        assert raised.value.failure_class is failure
        assert raised.value.http_status == http_status
        assert raised.value.upstream_status == reply.status


async def test_missing_key_is_a_credential_failure(provider: HttpProvider) -> None:
    with pytest.raises(UpstreamError) as raised:
        await provider.generate(ask(user(TextPart("hi"))), replace(TARGET, credential=None))
    assert raised.value.failure_class is FailureClass.CREDENTIAL
    assert raised.value.upstream_status == 401


async def test_rate_limit_with_retry_after(fake: FakeAnthropicUpstream,
                                           provider: HttpProvider) -> None:
    fake.replies.append(Reply(status=429, error_type="rate_limit_error",
                              headers={"retry-after": "12"}))
    with pytest.raises(UpstreamError) as raised:
        await provider.generate(ask(user(TextPart("hi"))), TARGET)
    assert raised.value.failure_class is FailureClass.RATE_LIMITED
    assert raised.value.retry_after == 12.0 and raised.value.http_status == 429


async def test_translation_errors_reach_the_fake_as_refusals(
        fake: FakeAnthropicUpstream, provider: HttpProvider) -> None:
    # A result whose id names a call of an earlier turn: the fake answers as Anthropic does.
    request = ask(user(TextPart("a")),
                  Message("assistant", (ToolCallPart("f", {}, "toolu_x"),)),
                  user(ToolResultPart("f", {"output": 1}, "toolu_x")),
                  Message("assistant", (ToolCallPart("f", {}, "toolu_y"),)),
                  user(TextPart("no result")))
    with pytest.raises(UpstreamError) as raised:
        await provider.generate(request, TARGET)
    assert raised.value.failure_class is FailureClass.CALLER_FAULT
    assert "without tool_result" in raised.value.message


async def test_error_event_mid_stream(fake: FakeAnthropicUpstream,
                                      provider: HttpProvider) -> None:
    fake.replies.append(Reply(text="partial answer", fail_mid_stream=True))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as raised:
        async for event in provider.stream(ask(user(TextPart("hi"))), TARGET):
            seen.append(event)
    assert raised.value.failure_class is FailureClass.TRANSIENT
    assert raised.value.upstream_status == 529
    assert any(isinstance(e, PartDelta) for e in seen)


async def test_error_event_before_anything(fake: FakeAnthropicUpstream,
                                           provider: HttpProvider) -> None:
    fake.replies.append(Reply(fail_at_start=True))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as raised:
        async for event in provider.stream(ask(user(TextPart("hi"))), TARGET):
            seen.append(event)
    assert seen == [] and raised.value.failure_class is FailureClass.TRANSIENT


async def test_early_end_of_stream(fake: FakeAnthropicUpstream,
                                   provider: HttpProvider) -> None:
    fake.replies.append(Reply(text="cut short", truncate=True))
    with pytest.raises(UpstreamError) as raised:
        await collect(provider, ask(user(TextPart("hi"))))
    assert raised.value.failure_class is FailureClass.TRANSIENT
    assert "early" in raised.value.message
