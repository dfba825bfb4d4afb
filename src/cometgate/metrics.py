"""Prometheus metrics. One registry per app instance (no global registry), so tests and
several apps in one process never share counters."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cometgate.canonical import Usage

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                   60, 120, 300)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The gateway's own time is small: finer buckets at the low end than the request latency's.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1)


@dataclass(slots=True)
class UpstreamTally:
    """Seconds one request spent awaiting upstreams (answers, a stream's next chunk)."""

    seconds: float = 0.0
    reached: bool = False  # whether it reached the pipeline's upstream calls at all


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "cometgate_requests", "HTTP requests served, by route and status",
            ["route", "status"], registry=self.registry,
        )
        self._latency = Histogram(
            "cometgate_request_duration_seconds",
            "Time from request start to the end of the response body, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._first_byte = Histogram(
            "cometgate_time_to_first_byte_seconds",
            "Time from request start to the first response byte, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._tokens = Counter(
            "cometgate_tokens", "Tokens processed, by model and direction (in/out/thoughts)",
            ["model", "direction"], registry=self.registry,
        )
        self._upstream_errors = Counter(
            "cometgate_upstream_errors", "Upstream failures, by provider and failure class",
            ["provider", "failure_class"], registry=self.registry,
        )
        self.in_flight = Gauge(
            "cometgate_requests_in_flight", "Requests being served now", registry=self.registry,
        )
        self._overhead = Histogram(
            "cometgate_gateway_overhead_seconds",
            "A model request's time in the gateway itself: its duration minus the time spent "
            "awaiting upstreams, by route",
            ["route"], buckets=OVERHEAD_BUCKETS, registry=self.registry,
        )
        # The request this task serves: the pipeline adds its upstream waits to its tally.
        self._tally: contextvars.ContextVar[UpstreamTally | None] = contextvars.ContextVar(
            f"cometgate_upstream_tally_{id(self)}", default=None)
        self.local_model_restarts = Gauge(
            "cometgate_local_model_restarts", "Times the local model worker was restarted",
            ["provider"], registry=self.registry,
        )
        # The labelled children in use, looked up once each: a `labels()` call takes a lock
        # and builds its key every time. Label values are bounded sets (route names, HTTP
        # statuses, configured models), and a child is made only on first use, as by labels().
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def request(self, route: str, status: int, seconds: float) -> None:
        self._child(self._requests, route, str(status)).inc()
        self._child(self._latency, route).observe(seconds)

    def first_byte(self, route: str, seconds: float) -> None:
        self._child(self._first_byte, route).observe(seconds)

    def usage(self, model: str, usage: Usage) -> None:
        self._child(self._tokens, model, "in").inc(usage.prompt_tokens)
        self._child(self._tokens, model, "out").inc(usage.output_tokens)
        if usage.thoughts_tokens:
            self._child(self._tokens, model, "thoughts").inc(usage.thoughts_tokens)

    def begin_request(self) -> UpstreamTally:
        """A fresh tally for the request this task starts serving (its stream's relay runs in
        a task that inherits it)."""
        tally = UpstreamTally()
        self._tally.set(tally)
        return tally

    def waited_upstream(self, seconds: float) -> None:
        tally = self._tally.get()
        if tally is not None:
            tally.seconds += seconds
            tally.reached = True

    def overhead(self, route: str, tally: UpstreamTally, seconds: float) -> None:
        """Observed for requests that reached an upstream (not health checks, refusals)."""
        if tally.reached:
            self._child(self._overhead, route).observe(max(0.0, seconds - tally.seconds))

    def upstream_error(self, provider: str, failure_class: str) -> None:
        self._upstream_errors.labels(provider, failure_class).inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
