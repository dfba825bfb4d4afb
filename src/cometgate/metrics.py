"""Prometheus metrics. One registry per app instance (no global registry), so tests and
several apps in one process never share counters."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

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


class _RouteSeries:
    """One route's children of the per-route metrics, looked up by label once rather than on
    every request (a `labels()` call takes a lock and builds a key each time)."""

    __slots__ = ("_by_status", "_metrics", "_overhead", "first_byte", "latency", "route")

    def __init__(self, metrics: Metrics, route: str) -> None:
        self.route = route
        self.latency = metrics._latency.labels(route)
        self.first_byte = metrics._first_byte.labels(route)
        self._metrics = metrics
        self._overhead: Histogram | None = None
        self._by_status: dict[int, Counter] = {}

    @property
    def overhead(self) -> Histogram:
        """Made on first use: a route that never reaches an upstream (health checks) has no
        overhead series at all, rather than one that stays at zero."""
        if self._overhead is None:
            self._overhead = self._metrics._overhead.labels(self.route)
        return self._overhead

    def requests_with(self, status: int) -> Counter:
        counter = self._by_status.get(status)
        if counter is None:  # statuses are a small set: HTTP's own
            counter = self._by_status[status] = self._metrics._requests.labels(
                self.route, str(status))
        return counter


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
        # Route labels are a bounded set (the router's route names, see api/middleware).
        self._routes: dict[str, _RouteSeries] = {}
        self._model_tokens: dict[tuple[str, str], Counter] = {}

    def _series(self, route: str) -> _RouteSeries:
        series = self._routes.get(route)
        if series is None:
            series = self._routes[route] = _RouteSeries(self, route)
        return series

    def request(self, route: str, status: int, seconds: float) -> None:
        series = self._series(route)
        series.requests_with(status).inc()
        series.latency.observe(seconds)

    def first_byte(self, route: str, seconds: float) -> None:
        self._series(route).first_byte.observe(seconds)

    def usage(self, model: str, usage: Usage) -> None:
        self._token_counter(model, "in").inc(usage.prompt_tokens)
        self._token_counter(model, "out").inc(usage.output_tokens)
        if usage.thoughts_tokens:  # a series of its own only once a model has thought
            self._token_counter(model, "thoughts").inc(usage.thoughts_tokens)

    def _token_counter(self, model: str, direction: str) -> Counter:
        counter = self._model_tokens.get((model, direction))
        if counter is None:  # models are the configured ones: a bounded set
            counter = self._model_tokens[(model, direction)] = self._tokens.labels(model,
                                                                                   direction)
        return counter

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
            self._series(route).overhead.observe(max(0.0, seconds - tally.seconds))

    def upstream_error(self, provider: str, failure_class: str) -> None:
        self._upstream_errors.labels(provider, failure_class).inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
