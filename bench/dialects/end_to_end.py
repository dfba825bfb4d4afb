"""OpenAI pass-through overhead ÷ direct, end to end, with bench/proxy's pieces: its mock
upstream (OpenAI route), its cometgate configuration (model `oai` on an openai-kind provider),
its open-loop client at a fixed rate and wrk at saturation (`bench.proxy.measure`).

For each kind (non-stream, then the mock's 20-event stream), back to back:

    direct            the body cometgate forwards, POSTed to the mock's /v1/chat/completions
    openai→openai     an OpenAI caller, `/v1/chat/completions` through cometgate: pass-through
    anthropic→openai  an Anthropic caller, `/v1/messages` through cometgate: translated
    responses→openai  a Responses API caller, `/v1/responses` through cometgate: translated,
                      with `store` on (OpenAI's default: one write of the response per request)
    responses, no store   the same with `store: false`
    direct again      the baseline once more, to show how far the machine drifted meanwhile

Ratios are against the direct run made just before. Every caller sends the request of
`caller_requests` (system, three turns, one tool, parameters), so the bodies match part 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
from bench.dialects import caller_requests
from bench.dialects.responses_caller import responses_request
from bench.proxy import services
from bench.proxy.figures import Summary, summarise
from bench.proxy.measure import Plan, measure, run_async
from bench.proxy.open_loop import Target, one
from bench.proxy.procstat import load_average

QUICK = Plan(count=120, warmup=20, saturation_seconds=3)
FULL = Plan()
GATEWAY_MODEL = "oai"  # bench/proxy's cometgate config: provider kind openai, the mock behind


@dataclass(frozen=True, slots=True)
class Route:
    system: str  # "direct", "openai→openai" …
    dialect: str  # of the answer the caller receives: what the probe looks for
    pid_of: str  # "mock" or "cometgate": whose CPU and memory are measured


ROUTES = (
    Route("direct", "openai", "mock"),
    Route("openai→openai", "openai", "cometgate"),
    Route("anthropic→openai", "anthropic", "cometgate"),
    Route("responses→openai", "responses", "cometgate"),
    Route("responses, no store", "responses", "cometgate"),
    Route("direct again", "openai", "mock"),
)


def _with_model(body: bytes, model: str) -> bytes:
    return orjson.dumps({**orjson.loads(body), "model": model})


def target(route: Route, stream: bool, mock_port: int, gateway_port: int, key: str) -> Target:
    if route.system.startswith("direct"):
        body = _with_model(caller_requests.openai_request(stream=stream),
                           services.MOCK_OPENAI_MODEL)
        return Target("127.0.0.1", mock_port, "/v1/chat/completions", body,
                      (("authorization", "Bearer mock-upstream-key"),))
    if route.dialect == "openai":
        body = _with_model(caller_requests.openai_request(stream=stream), GATEWAY_MODEL)
        return Target("127.0.0.1", gateway_port, "/v1/chat/completions", body,
                      (("authorization", f"Bearer {key}"),))
    if route.dialect == "responses":
        body = _with_model(responses_request(stream=stream), GATEWAY_MODEL)
        if "no store" in route.system:
            body = orjson.dumps({**orjson.loads(body), "store": False})
        return Target("127.0.0.1", gateway_port, "/v1/responses", body,
                      (("authorization", f"Bearer {key}"),))
    body = _with_model(caller_requests.anthropic_request(stream=stream), GATEWAY_MODEL)
    return Target("127.0.0.1", gateway_port, "/v1/messages", body,
                  (("x-api-key", key), ("anthropic-version", "2023-06-01")))


def probe(route: Route, stream: bool, where: Target, chunks: int) -> None:
    """One request before measuring: it must succeed and be an answer of the right dialect."""
    sample = run_async(one(where))
    marker = {"openai": b'"choices"', "anthropic": b'"message',
              "responses": b'"response'}[route.dialect]
    if sample.status != 200 or marker not in sample.body:
        raise RuntimeError(f"{route.system}: status {sample.status}, body {sample.body[:300]!r}")
    if stream and len(sample.events) < chunks:
        raise RuntimeError(f"{route.system}: {len(sample.events)} events, expected ≥ {chunks}")


@dataclass(frozen=True, slots=True)
class Row:
    kind: str  # "non-stream" or "stream"
    route: str
    summary: Summary


def run(plan: Plan, workdir: Path) -> list[Row]:
    """Starts the mock and cometgate (stopped on return or on any failure), measures all."""
    mock = services.start_mock(workdir)
    try:
        gateway, key = services.start_cometgate(workdir, mock)
        try:
            return [row for stream in (False, True)
                    for row in _kind(plan, mock, gateway, key, stream)]
        finally:
            services.stop(gateway)
    finally:
        services.stop(mock)


def _kind(plan: Plan, mock: services.Service, gateway: services.Service, key: str,
          stream: bool) -> list[Row]:
    kind = "stream" if stream else "non-stream"
    rows = []
    for route in ROUTES:
        where = target(route, stream, mock.port, gateway.port, key)
        probe(route, stream, where, plan.chunks)
        service = mock if route.pid_of == "mock" else gateway
        load = load_average()
        measured = measure(plan, mock, route.system, service.pid, kind, where, load)
        summary = summarise(measured, plan.chunks)
        print(f"  {kind:10} {route.system:17} ok {summary.ok}/{summary.ok + summary.failed}, "
              f"p50 {summary.p50:.2f} ms, saturation {summary.sat_rps:.0f} req/s "
              f"(load {load})", flush=True)
        rows.append(Row(kind, route.system, summary))
    return rows
