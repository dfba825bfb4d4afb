"""Failed sign-ins per address: a bounded number per window, then a wait."""

from __future__ import annotations

from cometgate.console.throttle import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_address_waits_after_too_many_failures_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    throttle = SignInThrottle(max_failures=3, window=100, clock=clock)
    for step in range(3):
        assert throttle.wait("a") is None
        throttle.failed("a")
        clock.now += 10 if step < 2 else 0
    assert throttle.wait("a") == 80  # the first failure (t=0) leaves the window at t=100
    assert throttle.wait("b") is None  # other addresses are not held back
    clock.now = 100
    assert throttle.wait("a") is None
    throttle.failed("a")
    assert throttle.wait("a") == 10


def test_a_success_clears_the_count() -> None:
    throttle = SignInThrottle(max_failures=2, clock=Clock())
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.wait("a") is None
