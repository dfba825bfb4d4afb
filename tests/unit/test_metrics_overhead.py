"""The gateway-overhead histogram: a request's duration minus its upstream waits, counted only
for requests that reached an upstream."""

from __future__ import annotations

import asyncio

import pytest

from cometgate.metrics import Metrics, UpstreamTally


def observed(metrics: Metrics, route: str) -> tuple[float | None, float | None]:
    registry = metrics.registry
    labels = {"route": route}
    return (registry.get_sample_value("cometgate_gateway_overhead_seconds_count", labels),
            registry.get_sample_value("cometgate_gateway_overhead_seconds_sum", labels))


def test_overhead_is_the_duration_minus_the_upstream_waits() -> None:
    metrics = Metrics()
    tally = metrics.begin_request()
    metrics.waited_upstream(0.25)
    metrics.waited_upstream(0.5)  # a retry, or a stream's waits for its chunks
    assert tally == UpstreamTally(0.75, reached=True)
    metrics.overhead("generateContent", tally, 1.0)
    count, total = observed(metrics, "generateContent")
    assert count == 1 and total == pytest.approx(0.25)


def test_a_request_that_reached_no_upstream_is_not_observed() -> None:
    metrics = Metrics()
    metrics.overhead("healthz", metrics.begin_request(), 0.01)
    assert observed(metrics, "healthz") == (None, None)


def test_waits_outside_a_request_count_nowhere_and_tasks_share_their_request() -> None:
    metrics = Metrics()
    metrics.waited_upstream(1.0)  # no request begun in this context: ignored

    async def request() -> UpstreamTally:
        tally = metrics.begin_request()

        async def relay() -> None:  # a stream's relay runs in a task of its own
            metrics.waited_upstream(0.125)

        await asyncio.create_task(relay())
        return tally

    assert asyncio.run(request()) == UpstreamTally(0.125, reached=True)


def test_overhead_is_never_negative() -> None:
    metrics = Metrics()
    metrics.overhead("generateContent", UpstreamTally(2.0, reached=True), 1.5)
    assert observed(metrics, "generateContent") == (1.0, 0.0)
