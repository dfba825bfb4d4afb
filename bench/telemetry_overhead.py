"""What OpenTelemetry costs a request: off (the default, no endpoint) against on, in one run,
and what the off path's hooks cost against a request.

    .venv/bin/python -m bench.telemetry_overhead               # 5 rounds of 1,000 requests
    .venv/bin/python -m bench.telemetry_overhead --rounds 9 --requests 2000

The gateway runs in process (ASGI, no sockets) in front of an in-process OpenAI-compatible
upstream (an httpx MockTransport answering a fixed chat completion), so the figures are the
gateway's own CPU time per request: a Gemini generateContent call, translated, with the usage
record and limits as in production. Three apps are built in the same process:

- off: no OTLP endpoint (the default): the tracer is None, OpenTelemetry is not used;
- on: the SDK with a BatchSpanProcessor exporting to a discarding exporter and an in-memory
  metric reader (the work of making spans and metrics, without the network);

Rounds alternate off, on, on, off, … so that a drift of the machine's load falls on both; the
figure is the median over rounds of each round's mean CPU time per request (the process's, so
the span processor's thread counts; less sensitive than wall time to the machine's other
work), and the ratio on/off.

"Costing nothing measurable when off" is then shown two ways: the off app's hooks are a fixed
number of `is not None` tests per request (counted below), each timed with timeit, and their
sum is printed as a fraction of the off request's time; and the off figure sits within the
round-to-round spread of itself.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import timeit
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from starlette.applications import Starlette

from cometgate.app import create_app
from cometgate.otel import OtelTracer, upstreams_of
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.settings import OpenAIProviderSettings, Settings, TelemetrySettings, load_settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository

CONFIG = """
routing: {retries: 0}
server: {access_log: false}
providers:
  mock: {kind: openai, base_url: "http://mock-upstream/v1"}
models:
  bench-model: {provider: mock, input_token_limit: 8192, output_token_limit: 1024}
"""
ANSWER = orjson.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "bench-model",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello."}}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
})
BODY = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
PATH = "/v1beta/models/bench-model:generateContent"
# `is not None` tests the off path adds to one generateContent: Meter._traced at admission,
# Gateway._run, Meter.finish.
OFF_HOOKS = 3


class DiscardingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def mock_upstream(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=ANSWER, headers={"content-type": "application/json"})


def provider(settings: Settings) -> object:
    spec = settings.provider("mock")
    assert isinstance(spec, OpenAIProviderSettings)
    client = httpx.AsyncClient(transport=httpx.MockTransport(mock_upstream))
    return http_provider("mock", base_url=spec.base_url, options=openai_options(spec),
                         timeouts=spec.timeouts, client=client)


def on_tracer(settings: Settings) -> OtelTracer:
    return OtelTracer(TelemetrySettings(), upstreams_of(settings),
                      span_processor=BatchSpanProcessor(DiscardingExporter()),
                      metric_reader=InMemoryMetricReader())


async def round_ms(app: Starlette, key: str, requests: int) -> float:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway",
                                 headers={"x-goog-api-key": key,
                                          "content-type": "application/json"}) as http:
        started = time.process_time()  # CPU of this process, the exporter's thread included
        for _ in range(requests):
            response = await http.post(PATH, content=BODY)
            if response.status_code != 200:
                raise RuntimeError(f"the gateway answered {response.status_code}: "
                                   f"{response.text}")
        return (time.process_time() - started) * 1000 / requests


async def run(rounds: int, requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cg-telemetry-bench-") as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        settings = load_settings(config, data_dir=Path(tmp) / "data", env={"HOME": tmp})
        async with await open_database(settings.database_url) as database:
            _, key = await KeyRepository(database).create(f"bench-{secrets.token_hex(4)}")
        apps = {
            "off": create_app(settings, providers={"mock": provider(settings)}),  # type: ignore[dict-item]
            "on": create_app(settings, providers={"mock": provider(settings)},  # type: ignore[dict-item]
                             tracer=on_tracer(settings)),
        }
        figures: dict[str, list[float]] = {"off": [], "on": []}
        async with apps["off"].router.lifespan_context(apps["off"]):
            async with apps["on"].router.lifespan_context(apps["on"]):
                for name in ("off", "on"):  # warm-up
                    await round_ms(apps[name], key, min(200, requests))
                for index in range(rounds):
                    order = ("off", "on") if index % 2 == 0 else ("on", "off")
                    for name in order:
                        figures[name].append(await round_ms(apps[name], key, requests))
    off, on = (statistics.median(figures[n]) for n in ("off", "on"))
    spread = (max(figures["off"]) - min(figures["off"])) / off
    check = timeit.timeit("t is not None", setup="t = None", number=1_000_000) * 1000  # ns
    hooks_ns = OFF_HOOKS * check
    print(f"{rounds} rounds x {requests} generateContent requests, in process")
    print(f"  telemetry off  {off * 1000:8.1f} µs CPU/request   (rounds: "
          f"{', '.join(f'{v * 1000:.0f}' for v in figures['off'])})")
    print(f"  telemetry on   {on * 1000:8.1f} µs CPU/request   (rounds: "
          f"{', '.join(f'{v * 1000:.0f}' for v in figures['on'])})")
    print(f"  on / off       {on / off:8.3f}")
    print(f"  off path: {OFF_HOOKS} `is not None` hooks x {check:.1f} ns = {hooks_ns:.0f} ns "
          f"= {hooks_ns / (off * 1e6) * 100:.4f}% of an off request "
          f"(round-to-round spread of off itself: {spread * 100:.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.requests))


if __name__ == "__main__":
    main()
