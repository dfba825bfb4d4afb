from __future__ import annotations

from cometgate.routing.health import Health
from cometgate.settings import RoutingSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def health(clock: Clock) -> Health:
    return Health(RoutingSettings(breaker_failures=2, breaker_open_seconds=10), clock=clock)


def test_breaker_opens_after_consecutive_failures_then_admits_one_probe() -> None:
    clock = Clock()
    state = health(clock)
    state.failed("t")
    assert state.admit("t") and not state.is_open("t")
    state.failed("t")
    assert state.is_open("t") and not state.admissible("t") and not state.admit("t")
    clock.now += 10
    assert state.admissible("t")
    assert state.admit("t")  # the half-open probe
    assert not state.admit("t") and not state.admissible("t")  # only one at a time
    state.succeeded("t")
    assert not state.is_open("t") and state.admit("t")


def test_a_failed_probe_reopens_at_once() -> None:
    clock = Clock()
    state = health(clock)
    state.failed("t")
    state.failed("t")
    clock.now += 10
    assert state.admit("t")
    state.failed("t")
    assert state.is_open("t") and not state.admissible("t")


def test_a_probe_without_verdict_is_released() -> None:
    clock = Clock()
    state = health(clock)
    state.failed("t")
    state.failed("t")
    clock.now += 10
    assert state.admit("t")
    state.released("t")
    assert state.admit("t")


def test_success_resets_the_failure_count() -> None:
    state = health(Clock())
    state.failed("t")
    state.succeeded("t")
    state.failed("t")
    assert not state.is_open("t")


def test_credentials_cool_down_for_the_longest_requested_time() -> None:
    clock = Clock()
    state = health(clock)
    assert state.cooling("k") == 0
    state.cool("k", 30)
    state.cool("k", 5)  # a shorter request does not shorten the rest
    assert state.cooling("k") == 30
    clock.now += 30
    assert state.cooling("k") == 0
