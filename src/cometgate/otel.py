"""Traces and metrics after OpenTelemetry's GenAI semantic conventions, exported by OTLP over
http/protobuf. Imported only when telemetry is on (see `tracing` for the seam).

Spans
- one SERVER span per caller request, "{operation} {model}" (the model the caller named):
  gen_ai.operation.name, gen_ai.request.model, and at its end gen_ai.provider.name,
  gen_ai.response.model, gen_ai.usage.input_tokens/output_tokens,
  gen_ai.response.finish_reasons (answers the gateway decoded), http.response.status_code,
  error.type (the failure class, else the status) for a failed request, and for streams
  cometgate.time_to_first_chunk (seconds);
- one CLIENT span per upstream attempt, its child, "{operation} {upstream model}":
  gen_ai.provider.name, gen_ai.request.model (the upstream's model name), cometgate.provider
  (the configured provider), server.address/port, and on failure error.type = the failure
  class that drove failover, with the upstream's HTTP status. A stream's attempt ends when its
  first chunk arrives (failover cannot happen after that).
Prompts and answers (gen_ai.input.messages, gen_ai.output.messages) only with
`telemetry.record_content: true`.

Metrics (histograms, per caller request): gen_ai.client.token.usage (gen_ai.token.type input
or output), gen_ai.client.operation.duration, and for streams
gen_ai.client.operation.time_to_first_chunk.

Providers are this app's own (never the process-global ones), so several apps in a process
(tests) never share them; `shutdown` flushes both at the app's end.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from cometgate.canonical import GenerateRequest, GenerateResponse, TextPart
from cometgate.errors import RequestRejected, UpstreamError
from cometgate.routing.failover import Skip
from cometgate.routing.plan import Attempt
from cometgate.settings import Settings, TelemetrySettings
from cometgate.settings.sections.providers import PROVIDER_KINDS, ProviderKind, kind_of
from cometgate.tracing import RequestEnd

T = TypeVar("T")
SCOPE = "cometgate"
# The GenAI conventions' recommended bucket boundaries for these two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)


@dataclass(frozen=True, slots=True)
class Upstream:
    """What a span says about a configured provider."""

    system: str  # gen_ai.provider.name
    address: str | None = None
    port: int | None = None


def upstreams_of(
    settings: Settings, kinds: Mapping[str, ProviderKind] = PROVIDER_KINDS
) -> dict[str, Upstream]:
    """gen_ai.provider.name per configured provider: the conventions' names for the APIs
    they speak; the bundled local model is cometgate's own."""
    found = {}
    for spec in settings.providers:
        system = kind_of(spec, kinds).telemetry_system
        base_url = getattr(spec, "base_url", None)
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        found[spec.name] = Upstream(system, parts.hostname if parts else None,
                                    parts.port if parts else None)
    return found


class _Request:
    """A request's span, and what its attempts learned for it."""

    def __init__(self, owner: OtelTracer, span: Span, attributes: dict[str, Any]) -> None:
        self._owner = owner
        self.span = span
        self.attributes = attributes
        self.finish_reasons: tuple[str, ...] = ()
        self.ended = False

    def end(self, end: RequestEnd) -> None:
        if self.ended:
            return
        self.ended = True
        self._owner.ended(self, end)


class OtelTracer:
    def __init__(
        self,
        settings: TelemetrySettings,
        upstreams: Mapping[str, Upstream],
        *,
        span_processor: SpanProcessor | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        """`span_processor`, `metric_reader`: where spans and metrics go instead of the
        OTLP exporters the settings name (tests pass in-memory ones)."""
        self._record_content = settings.record_content
        self._upstreams = dict(upstreams)
        # Resource(…), not Resource.create(…): the latter reads OTEL_* variables itself, and
        # only settings reads the environment.
        resource = Resource({"service.name": settings.service_name,
                             **dict(settings.resource_attributes)})
        headers = {name: secret.value for name, secret in settings.headers}
        self._tracer_provider = TracerProvider(resource=resource)
        if span_processor is None and settings.traces_endpoint is not None:
            span_processor = BatchSpanProcessor(
                OTLPSpanExporter(endpoint=settings.traces_endpoint, headers=headers))
        if span_processor is not None:
            self._tracer_provider.add_span_processor(span_processor)
        if metric_reader is None and settings.metrics_endpoint is not None:
            metric_reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=settings.metrics_endpoint, headers=headers),
                export_interval_millis=settings.metric_export_interval_seconds * 1000)
        self._meter_provider = MeterProvider(
            resource=resource, metric_readers=[metric_reader] if metric_reader else [])
        self._tracer = self._tracer_provider.get_tracer(SCOPE)
        meter = self._meter_provider.get_meter(SCOPE)
        self._tokens: Histogram = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Tokens used per request, by gen_ai.token.type",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self._duration: Histogram = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s",
            description="Duration of a caller's request, to its last byte",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        self._first_chunk: Histogram = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time from a streamed request's start to its first chunk",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        # The request being served in this task: its attempts' spans are its children.
        self._current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
            f"cometgate_request_{id(self)}", default=None)

    def start_request(
        self, *, operation: str, model: str, dialect: str, stream: bool
    ) -> _Request:
        attributes = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
        span = self._tracer.start_span(
            f"{operation} {model}", kind=SpanKind.SERVER,
            attributes={**attributes, "cometgate.dialect": dialect, "cometgate.stream": stream})
        request = _Request(self, span, attributes)
        self._current.set(request)
        return request

    def attempts(
        self,
        attempt: Callable[[Attempt], Awaitable[T]],
        *,
        operation: str,
        content: Callable[[], GenerateRequest] | None = None,
    ) -> Callable[[Attempt], Awaitable[T]]:
        request = self._current.get()
        if request is not None and request.ended:
            request = None  # a request this task served earlier: not this call's parent
        context = trace.set_span_in_context(request.span) if request is not None else None

        async def traced(option: Attempt) -> T:
            candidate = option.candidate
            upstream = self._upstreams.get(candidate.provider_name, Upstream("openai"))
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": upstream.system,
                "gen_ai.request.model": candidate.upstream_model,
                "cometgate.provider": candidate.provider_name,
            }
            if upstream.address is not None:
                attributes["server.address"] = upstream.address
            if upstream.port is not None:
                attributes["server.port"] = upstream.port
            span = self._tracer.start_span(f"{operation} {candidate.upstream_model}",
                                           context=context, kind=SpanKind.CLIENT,
                                           attributes=attributes)
            if self._record_content and content is not None:
                _record_input(span, content)
            try:
                result = await attempt(option)
            except BaseException as exc:
                _record_failure(span, exc)
                span.end()
                raise
            span.set_attribute("gen_ai.response.model", candidate.upstream_model)
            response = getattr(result, "response", None)
            if isinstance(response, GenerateResponse):
                reasons = _finish_reasons(response)
                span.set_attribute("gen_ai.response.finish_reasons", reasons)
                span.set_attribute("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
                if request is not None:
                    request.finish_reasons = reasons
                if self._record_content:
                    span.set_attribute("gen_ai.output.messages", _output_messages(response))
            span.end()
            return result

        return traced

    def ended(self, request: _Request, end: RequestEnd) -> None:
        span = request.span
        attributes = dict(request.attributes)
        if end.provider is not None:
            upstream = self._upstreams.get(end.provider, Upstream("openai"))
            attributes["gen_ai.provider.name"] = upstream.system
        if end.upstream_model is not None:
            attributes["gen_ai.response.model"] = end.upstream_model
        failed = end.status >= 400
        if failed:
            attributes["error.type"] = end.failure_class or str(end.status)
        span.set_attributes(attributes)
        span.set_attribute("http.response.status_code", end.status)
        if end.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", end.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", end.usage.output_tokens)
            self._tokens.record(end.usage.prompt_tokens,
                                {**attributes, "gen_ai.token.type": "input"})
            self._tokens.record(end.usage.output_tokens,
                                {**attributes, "gen_ai.token.type": "output"})
        if request.finish_reasons:
            span.set_attribute("gen_ai.response.finish_reasons", request.finish_reasons)
        if end.first_chunk_seconds is not None:
            span.set_attribute("cometgate.time_to_first_chunk", end.first_chunk_seconds)
            self._first_chunk.record(end.first_chunk_seconds, attributes)
        self._duration.record(end.seconds, attributes)
        if failed:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def shutdown(self) -> None:
        self._tracer_provider.shutdown()
        self._meter_provider.shutdown()


def build_tracer(settings: Settings) -> OtelTracer:
    return OtelTracer(settings.telemetry, upstreams_of(settings))


def _record_failure(span: Span, exc: BaseException) -> None:
    cause = exc.__cause__ if isinstance(exc, Skip) else exc
    if isinstance(cause, UpstreamError):
        span.set_attribute("error.type", cause.failure_class.value)
        span.set_attribute("cometgate.failure_class", cause.failure_class.value)
        span.set_attribute("http.response.status_code", cause.http_status)
    elif isinstance(cause, RequestRejected):
        span.set_attribute("error.type", "skipped")  # refused before anything was sent
    else:
        span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR))


def _finish_reasons(response: GenerateResponse) -> tuple[str, ...]:
    return tuple(c.finish_reason.value.lower() for c in response.candidates
                 if c.finish_reason is not None)


def _record_input(span: Span, content: Callable[[], GenerateRequest]) -> None:
    try:
        request = content()
    except RequestRejected:
        return  # the attempt fails with it; there is nothing to record
    messages = [_message(m.role, m.parts) for m in request.messages]
    if request.system:
        span.set_attribute("gen_ai.system_instructions", orjson.dumps(
            [{"type": "text", "content": p.text} for p in request.system
             if isinstance(p, TextPart)]).decode())
    span.set_attribute("gen_ai.input.messages", orjson.dumps(messages).decode())


def _output_messages(response: GenerateResponse) -> str:
    return orjson.dumps([
        {**_message("assistant", c.parts),
         "finish_reason": c.finish_reason.value.lower() if c.finish_reason else None}
        for c in response.candidates]).decode()


def _message(role: Any, parts: Sequence[Any]) -> dict[str, Any]:
    """The conventions' message shape; only text is written out (blobs could be megabytes)."""
    return {"role": getattr(role, "value", role),
            "parts": [{"type": "text", "content": p.text} if isinstance(p, TextPart)
                      else {"type": type(p).__name__} for p in parts]}

