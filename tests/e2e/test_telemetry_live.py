"""A live `cometgate serve` configured only by the standard OTEL_* variables exports its spans
and GenAI metrics by OTLP http/protobuf to a receiver on a loopback socket; the spans and
metrics still buffered are flushed when the gateway is stopped with SIGTERM."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.contract.upstreams import served
from tests.e2e.conftest import create_key
from tests.e2e.fake_gateway import MODEL, UPSTREAM_MODEL, gateway_config, gateway_env, start_serve
from tests.fakes.openai_upstream import FakeOpenAIUpstream

STOP_TIMEOUT_SECONDS = 30


def otlp_receiver(received: list[tuple[str, str, bytes]]) -> Starlette:
    async def export(request: Request) -> Response:
        received.append((request.url.path, request.headers["content-type"],
                         await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    return Starlette(routes=[Route("/v1/traces", export, methods=["POST"]),
                             Route("/v1/metrics", export, methods=["POST"])])


async def test_a_live_gateway_exports_spans_and_metrics_by_otlp(tmp_path: Path) -> None:
    received: list[tuple[str, str, bytes]] = []
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "otel")
    async with served(FakeOpenAIUpstream().app, otlp_receiver(received)) as (upstream, otlp):
        env = gateway_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp, OTEL_SERVICE_NAME="e2e-gateway")
        gateway = await start_serve(tmp_path, "otel", gateway_config(upstream), data_dir, env)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.post(
                    f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent",
                    headers={"x-goog-api-key": key},
                    json={"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
            assert response.status_code == 200
            # SIGTERM; the loop keeps serving the receiver while the gateway flushes to it.
            gateway.process.terminate()
            await asyncio.to_thread(gateway.process.wait, STOP_TIMEOUT_SECONDS)
        finally:
            gateway.stop()
    traces, metrics = ExportTraceServiceRequest(), ExportMetricsServiceRequest()
    for path, content_type, body in received:
        assert content_type == "application/x-protobuf"
        (traces if path == "/v1/traces" else metrics).MergeFromString(body)
    spans = [span for resource in traces.resource_spans for scope in resource.scope_spans
             for span in scope.spans]
    assert sorted(span.name for span in spans) == [
        f"generate_content {MODEL}", f"generate_content {UPSTREAM_MODEL}"]
    services = {attribute.value.string_value for resource in traces.resource_spans
                for attribute in resource.resource.attributes
                if attribute.key == "service.name"}
    assert services == {"e2e-gateway"}
    names = {metric.name for resource in metrics.resource_metrics
             for scope in resource.scope_metrics for metric in scope.metrics}
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= names
