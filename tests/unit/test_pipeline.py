"""Gateway (pipeline.py): routing, refusal of untranslatable fields, what is reported as
dropped, stream start and relay, metrics."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    GenerationParams,
    Message,
    ModelInfo,
    PartDelta,
    StreamEvent,
    StreamStarted,
    TextPart,
    ThinkingConfig,
    Untranslated,
    Usage,
    UsageReported,
)
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.errors import (
    FailureClass,
    InternalError,
    InvalidRequest,
    NotFound,
    UpstreamError,
)
from cometgate.metrics import Metrics
from cometgate.pipeline import Gateway
from cometgate.providers.base import Provider, Target
from cometgate.providers.http import HttpProvider, TokenizingHttpProvider
from cometgate.providers.timeouts import Timeouts
from cometgate.routing.failover import Failover
from cometgate.routing.health import Health
from cometgate.routing.plan import Candidate, Planner
from cometgate.routing.resolve import ModelRoute, Router
from cometgate.sandbox import BubblewrapSandbox
from cometgate.settings import RoutingSettings
from cometgate.settings.sections.code_execution import CodeExecutionSettings

MODEL = ModelInfo(id="m", display_name="M", description="", version="1", base_model_id="m",
                  input_token_limit=100, output_token_limit=50, temperature=0.5, top_k=7)
HELLO = (Message("user", (TextPart("hello"),)),)


class ScriptedProvider:
    """A provider speaking the Provider protocol's own language (canonical events), that
    records whether its stream was closed."""

    name = "scripted"

    def __init__(self, events: list[StreamEvent], fail_after: int | None = None) -> None:
        self.events = events
        self.fail_after = fail_after
        self.closed = False
        self.yielded = 0

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse:
        raise AssertionError("not used")

    async def stream(self, request: GenerateRequest, target: Target) -> AsyncGenerator[
        StreamEvent, None
    ]:
        try:
            for index, event in enumerate(self.events):
                if index == self.fail_after:
                    raise UpstreamError("broke", failure_class=FailureClass.TRANSIENT,
                                        http_status=503, status="UNAVAILABLE")
                self.yielded += 1
                yield event
        finally:
            self.closed = True

    async def aclose(self) -> None:
        pass


def gateway_with(provider: Provider, metrics: Metrics | None = None) -> Gateway:
    router = Router([ModelRoute(MODEL, (Candidate("up", provider, "upstream-m"),))])
    # No retries: these tests are about one attempt's flow, not about failover.
    health = Health(RoutingSettings(retries=0))
    return Gateway(router, metrics or Metrics(), planner=Planner(health),
                   failover=Failover(RoutingSettings(retries=0), health))


@pytest.fixture
def http_provider(upstream: FakeOpenAIUpstream) -> Iterator[HttpProvider]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app))
    yield TokenizingHttpProvider("up", base_url="http://fake-upstream/v1",
                                 options=OpenAIOptions(accepts_top_k=False),
                                 timeouts=Timeouts(), client=client)


def request(messages: tuple[Message, ...] = HELLO, **fields: Any) -> GenerateRequest:
    return GenerateRequest(model="models/m", messages=messages, **fields)


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


STARTED = StreamStarted("m", "rid", 1_700_000_000.0)
TEXT_EVENTS: list[StreamEvent] = [
    STARTED, PartDelta(TextPart("a")), PartDelta(TextPart("b")),
    CandidateFinished(FinishReason.STOP), UsageReported(Usage(prompt_tokens=3, output_tokens=2)),
]


def test_models_and_model_lookup(http_provider: HttpProvider) -> None:
    gateway = gateway_with(http_provider)
    assert gateway.models() == [MODEL]
    assert gateway.model("m") == MODEL and gateway.model("models/m") == MODEL
    assert gateway.model("other") is None


async def test_generate_sends_the_upstream_model_with_defaults(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    metrics = Metrics()
    outcome = await gateway_with(http_provider, metrics).generate(request())
    assert outcome.response.model_version == "m"
    sent = upstream.requests[0]
    assert sent["model"] == "upstream-m" and sent["temperature"] == 0.5
    assert "top_k" not in sent  # this upstream takes no top_k
    assert metric(metrics, "cometgate_tokens_total", model="m", direction="in") == 7
    assert metric(metrics, "cometgate_tokens_total", model="m", direction="out") == 5


async def test_unknown_model_is_not_found(http_provider: HttpProvider) -> None:
    with pytest.raises(NotFound):
        await gateway_with(http_provider).generate(
            GenerateRequest(model="nope", messages=HELLO))


async def test_capability_refusal_happens_before_the_upstream(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    with pytest.raises(InvalidRequest, match="Thinking is not enabled for models/m"):
        await gateway_with(http_provider).generate(request(thinking=ThinkingConfig(budget=5)))
    assert upstream.requests == []


async def test_droppable_untranslated_fields_are_reported(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    untranslated = (Untranslated("safetySettings", "no filter", droppable=True),
                    Untranslated("labels", "billing", droppable=True))
    outcome = await gateway_with(http_provider).generate(request(untranslated=untranslated))
    assert outcome.dropped.caller == ("safetySettings", "labels")
    assert len(upstream.requests) == 1


async def test_non_droppable_untranslated_fields_are_refused(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    untranslated = (Untranslated("labels", "billing", droppable=True),
                    Untranslated("tools[0].googleSearch", "Gemini only"),
                    Untranslated("cachedContent", "no caching"))
    with pytest.raises(InvalidRequest) as caught:
        await gateway_with(http_provider).generate(request(untranslated=untranslated))
    assert caught.value.message == (
        "tools[0].googleSearch is not supported by models/m: Gemini only\n"
        "cachedContent is not supported by models/m: no caching"
    )
    assert caught.value.violations == {"tools[0].googleSearch": "Gemini only",
                                       "cachedContent": "no caching"}
    assert upstream.requests == []


async def test_provider_drops_are_reported_as_paths(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    signed = Message("assistant", (TextPart("thinking aloud", signature=b"sig"),))
    answer = Message("user", (TextPart("go on"),))
    outcome = await gateway_with(http_provider).generate(
        request(messages=(*HELLO, signed, answer)))
    assert "messages[1].parts[0].signature" in outcome.dropped.canonical
    assert all(":" not in path for path in outcome.dropped.canonical)


async def test_upstream_error_is_counted_and_raised(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    metrics = Metrics()
    upstream.replies.append(Reply(status=503, error_type="server_error"))
    with pytest.raises(UpstreamError) as caught:
        await gateway_with(http_provider, metrics).generate(request())
    assert caught.value.http_status == 503
    assert metric(metrics, "cometgate_upstream_errors_total", provider="up",
                  failure_class="transient") == 1


async def test_stream_relays_every_event_and_records_usage() -> None:
    provider = ScriptedProvider(TEXT_EVENTS)
    metrics = Metrics()
    outcome = await gateway_with(provider, metrics).stream(request())
    received = [event async for event in outcome.events]
    assert received == TEXT_EVENTS
    assert provider.closed
    assert metric(metrics, "cometgate_tokens_total", model="m", direction="out") == 2
    # The one account of the stream's usage, which the caller's record reads too.
    assert outcome.usage.usage == Usage(prompt_tokens=3, output_tokens=2)


async def test_stream_usage_so_far_is_known_when_the_stream_breaks() -> None:
    reported = Usage(prompt_tokens=5, output_tokens=1)
    events = [STARTED, UsageReported(reported), *TEXT_EVENTS[1:]]
    outcome = await gateway_with(ScriptedProvider(events, fail_after=3)).stream(request())
    assert outcome.events is not None and outcome.usage.usage is None
    with pytest.raises(UpstreamError):
        async for _ in outcome.events:
            pass
    assert outcome.usage.usage == reported


async def test_stream_relay_closes_the_upstream_when_the_consumer_stops() -> None:
    provider = ScriptedProvider(TEXT_EVENTS)
    outcome = await gateway_with(provider).stream(request())
    events = outcome.events
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events):
        first = await anext(events)
        second = await anext(events)
        assert (first, second) == (STARTED, TEXT_EVENTS[1])
        assert not provider.closed
    assert provider.closed
    assert provider.yielded == 2


async def test_stream_dropped_comes_from_the_start_event() -> None:
    started = StreamStarted("m", "rid", 0.0, dropped=("params.top_k: not accepted",))
    untranslated = (Untranslated("labels", "billing", droppable=True),)
    outcome = await gateway_with(ScriptedProvider([started])).stream(
        request(untranslated=untranslated, params=GenerationParams(top_k=3)))
    assert outcome.dropped.caller == ("labels",)
    assert outcome.dropped.canonical == ("params.top_k",)


async def test_stream_failing_before_the_first_event_raises_and_closes() -> None:
    provider = ScriptedProvider(TEXT_EVENTS, fail_after=0)
    metrics = Metrics()
    with pytest.raises(UpstreamError):
        await gateway_with(provider, metrics).stream(request())
    assert provider.closed
    assert metric(metrics, "cometgate_upstream_errors_total", failure_class="transient") == 1


async def test_stream_failing_mid_way_is_counted_and_raised_to_the_consumer() -> None:
    provider = ScriptedProvider(TEXT_EVENTS, fail_after=2)
    metrics = Metrics()
    outcome = await gateway_with(provider, metrics).stream(request())
    received: list[StreamEvent] = []
    with pytest.raises(UpstreamError):
        async for event in outcome.events:
            received.append(event)
    assert received == TEXT_EVENTS[:2]
    assert provider.closed
    assert metric(metrics, "cometgate_upstream_errors_total", failure_class="transient") == 1
    assert metric(metrics, "cometgate_tokens_total", direction="in") == 0


async def test_empty_stream_is_an_internal_error() -> None:
    with pytest.raises(InternalError):
        await gateway_with(ScriptedProvider([])).stream(request())


async def test_count_tokens_uses_the_provider(
    http_provider: HttpProvider, upstream: FakeOpenAIUpstream
) -> None:
    words = (Message("user", (TextPart("one two three four"),)),)
    assert (await gateway_with(http_provider).count_tokens(request(words))).total == 4
    assert upstream.requests[0]["model"] == "upstream-m"


async def test_count_tokens_without_the_capability_is_refused(
    upstream: FakeOpenAIUpstream
) -> None:
    plain = HttpProvider("up", base_url="http://fake-upstream/v1", options=OpenAIOptions(),
                         timeouts=Timeouts(),
                         client=httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)))
    with pytest.raises(InvalidRequest) as refused:
        await gateway_with(plain).count_tokens(request())
    assert refused.value.message == (
        "Token counting is not available for m: provider up gives no exact count (it "
        "declares no tokenize endpoint), and the gateway does not estimate one. An operator "
        "can enable it with `tokenize_endpoint: true` on provider up, when its server offers "
        "vLLM's POST /tokenize.")
    assert upstream.requests == []


async def test_defaults_the_gateway_filled_in_are_not_reported_as_dropped(
    upstream: FakeOpenAIUpstream,
) -> None:
    # An upstream that refuses top_k: the caller's own topK is reported, a default is not.
    no_top_k = TokenizingHttpProvider(
        "fake", base_url="http://fake-upstream/v1", options=OpenAIOptions(accepts_top_k=False),
        timeouts=Timeouts(),
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)),
    )
    gateway = gateway_with(no_top_k)
    sent = await gateway.generate(request(params=GenerationParams(top_k=5)))
    assert sent.dropped.canonical == ("params.top_k",)
    defaulted = await gateway.generate(request(params=GenerationParams(top_k=None)))
    assert defaulted.dropped.canonical == ()


class _CodeRunning(ScriptedProvider):
    def runs_code(self) -> bool:
        return True


def test_the_models_listing_hears_how_each_model_runs_code_and_draws() -> None:
    plain, native = ScriptedProvider([]), _CodeRunning([])
    drawing = replace(MODEL, id="drawing", output_modalities=("TEXT", "IMAGE"))
    routes = [ModelRoute(MODEL, (Candidate("up", plain, "m"),)),
              ModelRoute(replace(MODEL, id="native"), (Candidate("up", native, "m"),)),
              ModelRoute(drawing, (Candidate("up", plain, "m"),))]
    health = Health(RoutingSettings(retries=0))

    def gateway(sandbox: BubblewrapSandbox | None) -> Gateway:
        return Gateway(Router(routes), Metrics(), planner=Planner(health),
                       failover=Failover(RoutingSettings(retries=0), health), sandbox=sandbox)

    off = gateway(None)
    assert [off.code_execution_mode(m) for m in (MODEL.id, "native", "nope")] == [
        None, "native", None]
    assert off.sandbox_reserve(MODEL.id) == 0.0
    on = gateway(BubblewrapSandbox(CodeExecutionSettings(sandbox="bubblewrap", max_runs=3,
                                                         wall_seconds=2.5)))
    assert [on.code_execution_mode(m) for m in (MODEL.id, "native")] == ["emulated", "native"]
    assert on.sandbox_reserve(MODEL.id) == 7.5 and on.sandbox_reserve("native") == 0.0
    assert [off.image_output(m) for m in (MODEL.id, "drawing", "nope")] == [None, "native", None]
