from __future__ import annotations

from cometgate.routing.health import Blocked, Cause, Health, RestScope
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


def test_rests_last_for_the_longest_requested_time() -> None:
    clock = Clock()
    state = health(clock)
    assert state.resting("p", "k", "m") is None
    state.rest(RestScope("p", "k"), 30, Cause.CREDENTIAL)
    state.rest(RestScope("p", "k"), 5, Cause.CREDENTIAL)  # a shorter rest does not shorten it
    assert state.resting("p", "k", "m") == Blocked(Cause.CREDENTIAL, 30)
    clock.now += 30
    assert state.resting("p", "k", "m") is None


def test_a_model_rest_holds_that_model_only_and_a_credential_rest_every_model() -> None:
    clock = Clock()
    state = health(clock)
    state.rest(RestScope("p", "k", "hot"), 2, Cause.RATE_LIMIT)
    assert state.resting("p", "k", "hot") == Blocked(Cause.RATE_LIMIT, 2)
    assert state.resting("p", "k", "cool") is None
    assert state.resting("q", "k", "hot") is None  # another provider naming the same key
    state.rest(RestScope("p", "k"), 60, Cause.CREDENTIAL)
    assert state.resting("p", "k", "cool") == Blocked(Cause.CREDENTIAL, 60)
    assert state.resting("p", "k", "hot") == Blocked(Cause.CREDENTIAL, 60)  # the longer one
    assert state.resting("q", "k", "cool") is None


def test_circuit_wait_counts_down_and_is_zero_while_the_probe_is_out() -> None:
    clock = Clock()
    state = health(clock)
    assert state.circuit_wait("t") is None
    state.failed("t")
    state.failed("t")
    clock.now += 4
    assert state.circuit_wait("t") == 6
    clock.now += 6
    assert state.circuit_wait("t") is None  # ready for its probe
    assert state.admit("t")
    assert state.circuit_wait("t") == 0
