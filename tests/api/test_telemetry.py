"""OpenTelemetry through the app: one SERVER span per caller request and one CLIENT span per
upstream attempt, with the GenAI conventions' attributes; the GenAI metrics; no prompt or
answer unless the operator opts in; nothing at all unless an endpoint is configured; and the
gateway-overhead histogram on /metrics."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cometgate.app import build_tracer, create_app
from cometgate.otel import OtelTracer, upstreams_of
from cometgate.providers.base import Provider
from cometgate.settings import Settings, TelemetrySettings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.bodies import GENERATE, SMOL, STREAM, text_body
from tests.api.conftest import SettingsBuilder, create_key
from tests.conftest import FAKE_MODELS_YAML
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

CHAT = "/v1/chat/completions"


class Recorded:
    def __init__(self, http: httpx.AsyncClient, spans: InMemorySpanExporter,
                 metrics: InMemoryMetricReader) -> None:
        self.http, self._spans, self._metrics = http, spans, metrics

    def spans(self) -> list[ReadableSpan]:
        return list(self._spans.get_finished_spans())

    def histograms(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        data = self._metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = list(metric.data.data_points)
        return found


@contextlib.asynccontextmanager
async def traced_app(settings: Settings, provider: Provider, *,
                     record_content: bool = False) -> AsyncIterator[Recorded]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer = OtelTracer(replace(TelemetrySettings(), record_content=record_content),
                        upstreams_of(settings), span_processor=SimpleSpanProcessor(exporter),
                        metric_reader=reader)
    app = create_app(settings, providers={"fake": provider}, tracer=tracer)
    key = await create_key(settings, f"traced-{secrets.token_hex(4)}")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway",
            headers={"x-goog-api-key": key, "authorization": f"Bearer {key}"},
        ) as http:
            yield Recorded(http, exporter, reader)


def by_kind(spans: list[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind is kind]


async def test_one_span_per_request_and_one_per_attempt_with_genai_attributes(
    settings: Settings, fake_provider: Provider
) -> None:
    async with traced_app(settings, fake_provider) as app:
        assert (await app.http.post(GENERATE, json=text_body())).status_code == 200
        spans = app.spans()
    (request,) = by_kind(spans, SpanKind.SERVER)
    (attempt,) = by_kind(spans, SpanKind.CLIENT)
    assert request.name == f"generate_content {SMOL}"
    assert attempt.parent is not None and request.context is not None
    assert attempt.parent.span_id == request.context.span_id
    assert attempt.context is not None and attempt.context.trace_id == request.context.trace_id
    assert dict(request.attributes or {}) == {
        "gen_ai.operation.name": "generate_content", "gen_ai.request.model": SMOL,
        "cometgate.dialect": "gemini", "cometgate.stream": False,
        "gen_ai.provider.name": "openai", "gen_ai.response.model": SMOL,
        "http.response.status_code": 200, "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 5, "gen_ai.response.finish_reasons": ("stop",),
    }
    assert dict(attempt.attributes or {}) == {
        "gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": SMOL, "cometgate.provider": "fake",
        "server.address": "fake-upstream", "gen_ai.response.model": SMOL,
        "gen_ai.response.finish_reasons": ("stop",), "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 5,
    }


async def test_metrics_record_tokens_and_duration(
    settings: Settings, fake_provider: Provider
) -> None:
    async with traced_app(settings, fake_provider) as app:
        await app.http.post(CHAT, json={"model": SMOL, "messages": [
            {"role": "user", "content": "Hi"}]})
        histograms = app.histograms()
    tokens = {p.attributes["gen_ai.token.type"]: p.sum
              for p in histograms["gen_ai.client.token.usage"]}
    assert tokens == {"input": 7, "output": 5}
    (duration,) = histograms["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert duration.attributes["gen_ai.provider.name"] == "openai"


async def test_a_failover_shows_two_attempts_under_one_request(
    build_settings: SettingsBuilder, fake_provider: Provider, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings(models={"twice": {
        "candidates": [{"provider": "fake", "upstream_model": "first", "priority": 0},
                       {"provider": "fake", "upstream_model": "second", "priority": 1}],
        "input_token_limit": 1000, "output_token_limit": 100}})
    upstream.replies = [Reply(status=503, error_type="server_error")]
    async with traced_app(settings, fake_provider) as app:
        response = await app.http.post("/v1beta/models/twice:generateContent",
                                       json=text_body())
        assert response.status_code == 200
        spans = app.spans()
    (request,) = by_kind(spans, SpanKind.SERVER)
    failed, answered = sorted(by_kind(spans, SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert request.context is not None
    assert {failed.parent.span_id, answered.parent.span_id} == {  # type: ignore[union-attr]
        request.context.span_id}
    assert failed.attributes is not None and answered.attributes is not None
    assert failed.attributes["gen_ai.request.model"] == "first"
    assert failed.attributes["error.type"] == "transient"
    assert failed.attributes["cometgate.failure_class"] == "transient"
    assert failed.attributes["http.response.status_code"] == 503
    assert not failed.status.is_ok
    assert answered.attributes["gen_ai.request.model"] == "second"
    assert "error.type" not in answered.attributes
    assert request.attributes is not None
    assert request.attributes["gen_ai.response.model"] == "second"


async def test_a_failed_request_names_its_failure_class(
    settings: Settings, fake_provider: Provider, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies = [Reply(status=429, error_type="rate_limit_exceeded")]
    async with traced_app(settings, fake_provider) as app:
        response = await app.http.post(GENERATE, json=text_body())
        spans = app.spans()
    (request,) = by_kind(spans, SpanKind.SERVER)
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == response.status_code == 429
    assert request.attributes["error.type"] == "rate_limited"
    assert not request.status.is_ok


async def test_a_stream_records_its_time_to_first_chunk(
    settings: Settings, fake_provider: Provider
) -> None:
    async with traced_app(settings, fake_provider) as app:
        response = await app.http.post(f"{STREAM}?alt=sse", json=text_body())
        assert response.status_code == 200
        spans = app.spans()
        histograms = app.histograms()
    (request,) = by_kind(spans, SpanKind.SERVER)
    assert len(by_kind(spans, SpanKind.CLIENT)) == 1
    assert request.attributes is not None
    assert request.attributes["cometgate.stream"] is True
    assert request.attributes["cometgate.time_to_first_chunk"] > 0
    assert request.attributes["gen_ai.usage.output_tokens"] == 5
    (first_chunk,) = histograms["gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.count == 1


async def test_prompts_and_answers_are_recorded_only_when_opted_in(
    settings: Settings, fake_provider: Provider
) -> None:
    content_keys = {"gen_ai.input.messages", "gen_ai.output.messages",
                    "gen_ai.system_instructions"}
    body = {"systemInstruction": {"parts": [{"text": "Be brief."}]},
            **text_body("the secret prompt")}
    async with traced_app(settings, fake_provider) as app:
        await app.http.post(GENERATE, json=body)
        spans = app.spans()
    for span in spans:
        assert not content_keys & set(span.attributes or {})
        assert "the secret prompt" not in str(span.attributes)
    async with traced_app(settings, fake_provider, record_content=True) as app:
        await app.http.post(GENERATE, json=body)
        (attempt,) = by_kind(app.spans(), SpanKind.CLIENT)
    assert attempt.attributes is not None
    assert attempt.attributes["gen_ai.input.messages"] == (
        '[{"role":"user","parts":[{"type":"text","content":"the secret prompt"}]}]')
    assert attempt.attributes["gen_ai.system_instructions"] == (
        '[{"type":"text","content":"Be brief."}]')
    assert "Hello from the fake upstream." in str(attempt.attributes["gen_ai.output.messages"])


async def test_a_request_refused_at_admission_has_its_span_too(
    settings: Settings, fake_provider: Provider, upstream: FakeOpenAIUpstream
) -> None:
    async with await open_database(settings.database_url) as database:
        _, limited = await KeyRepository(database).create("limited", rpm=1)
    async with traced_app(settings, fake_provider) as app:
        headers = {"x-goog-api-key": limited}
        assert (await app.http.post(GENERATE, json=text_body(), headers=headers)).status_code \
            == 200
        refused = await app.http.post(GENERATE, json=text_body(), headers=headers)
        spans = app.spans()
    assert refused.status_code == 429
    requests = by_kind(spans, SpanKind.SERVER)
    assert len(requests) == 2 and len(by_kind(spans, SpanKind.CLIENT)) == 1
    last = requests[-1].attributes or {}
    assert last["http.response.status_code"] == 429 and last["error.type"] == "429"
    assert len(upstream.requests) == 1  # the refused one never left the gateway


def test_telemetry_is_off_without_an_endpoint(settings: Settings) -> None:
    assert build_tracer(settings) is None


async def test_the_overhead_histogram_counts_model_requests_only(
    settings: Settings, fake_provider: Provider, api_key: str
) -> None:
    app = create_app(settings, providers={"fake": fake_provider})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway",
                                     headers={"x-goog-api-key": api_key}) as http:
            await http.post(GENERATE, json=text_body())
            await http.post(f"{STREAM}?alt=sse", json=text_body())
            await http.get("/healthz")
            exposition = (await http.get("/metrics")).text
    counts = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1])
              for line in exposition.splitlines()
              if line.startswith("cometgate_gateway_overhead_seconds_count")}
    assert counts == {'route="generateContent"': 1.0, 'route="streamGenerateContent"': 1.0}


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_spans_are_exported_by_otlp_when_the_endpoint_variable_is_set(
    tmp_path: Path, fake_provider: Provider,
    otlp_receiver: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    endpoint, received = otlp_receiver
    config = tmp_path / "otel.yaml"
    config.write_text(FAKE_MODELS_YAML, encoding="utf-8")
    settings = load_settings(config, data_dir=tmp_path / "otel-data", env={
        "HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "gateway-under-test", "OTEL_METRICS_EXPORTER": "none"})
    app = create_app(settings, providers={"fake": fake_provider})
    key = await create_key(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway",
                                     headers={"x-goog-api-key": key}) as http:
            assert (await http.post(GENERATE, json=text_body())).status_code == 200
    # The app's end flushed the batch: the receiver has it, in OTLP's protobuf.
    paths = {(path, kind) for path, kind, _ in received}
    assert paths == {("/v1/traces", "application/x-protobuf")}
    exported = ExportTraceServiceRequest()
    for _, _, body in received:
        exported.MergeFromString(body)
    (resource,) = exported.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "gateway-under-test"
    spans = [s for scope in resource.scope_spans for s in scope.spans]
    assert sorted(s.name for s in spans) == [f"generate_content {SMOL}",
                                             f"generate_content {SMOL}"]
    assert {s.kind for s in spans} == {2, 3}  # SERVER and CLIENT, as OTLP numbers them
