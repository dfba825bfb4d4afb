from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cometgate.errors import FailureClass, InvalidRequest, UpstreamError, UpstreamUnavailable
from cometgate.providers.base import Target
from cometgate.routing.failover import Failover, Skip
from cometgate.routing.health import Blocked, Cause, Health, RestScope
from cometgate.routing.plan import Attempt, Candidate
from cometgate.settings import RoutingSettings

PROVIDER: Any = object()
POLICY = RoutingSettings(retries=2, breaker_failures=3, rate_limit_cooldown=7,
                         credential_cooldown=60, max_retry_after=10)


def attempt(name: str, credential: str = "") -> Attempt:
    return Attempt(Candidate(name, PROVIDER, "m"), Target("m", "alias"), credential)


def failure(kind: FailureClass, *, status: int = 503, retry_after: float | None = None
            ) -> UpstreamError:
    return UpstreamError(f"{kind} failure", failure_class=kind, http_status=status,
                         retry_after=retry_after)


class Script:
    """Answers each attempt from a per-target script of results or failures."""

    def __init__(self, **script: list[object]) -> None:
        self.script = script
        self.calls: list[str] = []

    def __call__(self, option: Attempt) -> Awaitable[str]:
        async def run() -> str:
            name = option.candidate.provider_name
            self.calls.append(f"{name}:{option.credential_id}" if option.credential_id else name)
            outcome = self.script[name].pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return str(outcome)
        return run()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def failover(health: Health | None = None) -> tuple[Failover, Health, Sleeps]:
    state = health or Health(POLICY)
    sleeps = Sleeps()
    return Failover(POLICY, state, sleep=sleeps), state, sleeps


async def test_transient_failures_retry_the_same_target_with_backoff() -> None:
    runner, _, sleeps = failover()
    script = Script(a=[failure(FailureClass.TRANSIENT), failure(FailureClass.TRANSIENT), "ok"])
    assert await runner.run([attempt("a"), attempt("b")], script) == "ok"
    assert script.calls == ["a", "a", "a"]
    assert len(sleeps.waits) == 2 and 0.05 <= sleeps.waits[0] <= 0.1 <= sleeps.waits[1] <= 0.2


async def test_after_the_retries_the_next_candidate_answers_once() -> None:
    runner, health, _ = failover()
    script = Script(a=[failure(FailureClass.TRANSIENT)] * 3, b=["from b"])
    assert await runner.run([attempt("a"), attempt("b")], script) == "from b"
    assert script.calls == ["a", "a", "a", "b"]
    assert health.is_open("a/m")  # three consecutive failures reach the threshold


async def test_rate_limits_cool_the_credential_and_move_on_at_once() -> None:
    runner, health, _ = clocked()
    script = Script(p=[failure(FailureClass.RATE_LIMITED, status=429, retry_after=30), "ok"])
    result = await runner.run([attempt("p", "env:A"), attempt("p", "env:B")], script)
    assert result == "ok" and script.calls == ["p:env:A", "p:env:B"]
    assert health.resting("p", "env:A", "m") == Blocked(Cause.RATE_LIMIT, 30)
    assert health.resting("p", "env:A", "other-model") is None  # a rate limit is per model


async def test_a_short_retry_after_on_the_last_option_is_waited_out() -> None:
    runner, _, sleeps = failover()
    script = Script(p=[failure(FailureClass.RATE_LIMITED, status=429, retry_after=3), "ok"])
    assert await runner.run([attempt("p", "env:A")], script) == "ok"
    assert sleeps.waits == [3]


@pytest.mark.parametrize("kind", [FailureClass.CREDENTIAL, FailureClass.QUOTA])
async def test_rejected_credentials_cool_down_for_long(kind: FailureClass) -> None:
    runner, health, _ = clocked()
    script = Script(p=[failure(kind), "ok"])
    assert await runner.run([attempt("p", "env:A"), attempt("p", "env:B")], script) == "ok"
    assert health.resting("p", "env:A", "other-model") == Blocked(Cause.CREDENTIAL, 60)


@pytest.mark.parametrize("kind", [FailureClass.CALLER_FAULT, FailureClass.UNKNOWN])
async def test_caller_faults_and_unknown_failures_return_at_once(kind: FailureClass) -> None:
    runner, _, sleeps = failover()
    script = Script(a=[failure(kind, status=400)], b=["never"])
    with pytest.raises(UpstreamError) as caught:
        await runner.run([attempt("a"), attempt("b")], script)
    assert caught.value.failure_class is kind and script.calls == ["a"] and sleeps.waits == []


async def test_when_everything_fails_the_last_error_carries_retry_after() -> None:
    runner, _, _ = failover()
    script = Script(a=[failure(FailureClass.RATE_LIMITED, status=429)],
                    b=[failure(FailureClass.CREDENTIAL)])
    with pytest.raises(UpstreamError) as caught:
        await runner.run([attempt("a", "env:A"), attempt("b", "env:B")], script)
    assert caught.value.failure_class is FailureClass.CREDENTIAL
    assert caught.value.http_status == 503 and caught.value.retry_after is not None


async def test_skipped_attempts_surface_their_reason_when_nothing_else_answers() -> None:
    runner, _, _ = failover()

    def refuse(option: Attempt) -> Awaitable[str]:
        async def run() -> str:
            raise Skip(InvalidRequest("cannot translate"))
        return run()

    with pytest.raises(InvalidRequest, match="cannot translate"):
        await runner.run([attempt("a"), attempt("b")], refuse)


async def test_no_admissible_target_is_503_with_retry_after() -> None:
    runner, health, _ = failover(Health(RoutingSettings(breaker_failures=1)))
    health.failed("a/m")
    with pytest.raises(UpstreamUnavailable) as caught:
        await runner.run([attempt("a")], Script(a=["never"]))
    assert caught.value.retry_after is not None


async def test_cancellation_releases_a_half_open_probe() -> None:
    clock = [0.0]
    health = Health(RoutingSettings(breaker_failures=1, breaker_open_seconds=5),
                    clock=lambda: clock[0])
    runner, _, _ = failover(health)
    health.failed("a/m")
    clock[0] = 5

    def cancelled(option: Attempt) -> Awaitable[str]:
        async def run() -> str:
            raise KeyboardInterrupt  # stands for any exit without a verdict
        return run()

    run: Callable[..., Awaitable[str]] = runner.run
    with pytest.raises(KeyboardInterrupt):
        await run([attempt("a")], cancelled)
    assert health.admit("a/m")  # the probe slot was given back


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clocked(**policy: Any) -> tuple[Failover, Health, Clock]:
    clock = Clock()
    settings = dataclasses.replace(POLICY, **policy)
    health = Health(settings, clock=clock)
    return Failover(settings, health, sleep=Sleeps()), health, clock


async def spent(runner: Failover, attempts: list[Attempt], left_out: list[Attempt],
                script: Script) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await runner.run(attempts, script, left_out=left_out)
    return caught.value


async def test_every_option_resting_after_a_rate_limit_is_a_429_with_the_remaining_rest() -> None:
    runner, health, clock = clocked()
    health.rest(RestScope("a", "env:A", "m"), 4, Cause.RATE_LIMIT)
    health.rest(RestScope("b", "env:B", "m"), 9, Cause.RATE_LIMIT)
    clock.now += 2.5
    error = await spent(runner, [], [attempt("a", "env:A"), attempt("b", "env:B")], Script())
    assert (error.http_status, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.failure_class is FailureClass.RATE_LIMITED
    assert error.retry_after == 2  # 1.5 s left on a, rounded up


async def test_a_rested_credential_or_an_open_circuit_is_a_503_with_the_real_wait() -> None:
    runner, health, clock = clocked()
    health.rest(RestScope("a", "env:A"), 60, Cause.CREDENTIAL)
    clock.now += 10
    error = await spent(runner, [], [attempt("a", "env:A")], Script())
    assert isinstance(error, UpstreamUnavailable) and error.retry_after == 50
    runner, health, clock = clocked(breaker_failures=1, breaker_open_seconds=30)
    health.failed("a/m")
    clock.now += 29.2
    error = await spent(runner, [], [attempt("a")], Script())
    assert isinstance(error, UpstreamUnavailable) and error.retry_after == 1


async def test_mixed_causes_are_a_503_with_the_soonest_wait() -> None:
    runner, health, _ = clocked(breaker_failures=1, breaker_open_seconds=30)
    health.rest(RestScope("a", "env:A", "m"), 3, Cause.RATE_LIMIT)
    health.failed("b/m")
    error = await spent(runner, [], [attempt("a", "env:A"), attempt("b")], Script())
    assert error.http_status == 503 and error.retry_after == 3


async def test_a_circuit_opened_during_the_run_counts_like_a_planned_one() -> None:
    runner, health, _ = clocked(breaker_failures=1, breaker_open_seconds=30)
    health.failed("b/m")  # opened after planning: the run itself skips it
    error = await spent(runner, [attempt("b")], [], Script())
    assert isinstance(error, UpstreamUnavailable) and error.retry_after == 30


async def test_the_last_failure_keeps_its_status_and_says_when_an_option_returns() -> None:
    runner, health, _ = clocked()
    health.rest(RestScope("a", "env:A", "m"), 2, Cause.RATE_LIMIT)
    script = Script(b=[failure(FailureClass.CREDENTIAL)])
    error = await spent(runner, [attempt("b", "env:B")], [attempt("a", "env:A")], script)
    assert error.failure_class is FailureClass.CREDENTIAL
    assert (error.http_status, error.retry_after) == (503, 2)
    # Alone, the rejected credential rests for credential_cooldown, and the caller hears so.
    runner, _, _ = clocked()
    error = await spent(runner, [attempt("b", "env:B")], [],
                        Script(b=[failure(FailureClass.CREDENTIAL)]))
    assert (error.http_status, error.retry_after) == (503, 60)


async def test_an_upstream_429_on_the_only_option_tells_its_own_wait() -> None:
    runner, _, _ = clocked(max_retry_after=0)
    script = Script(p=[failure(FailureClass.RATE_LIMITED, status=429, retry_after=1.2)])
    error = await spent(runner, [attempt("p", "env:A")], [], script)
    assert (error.http_status, error.retry_after) == (429, 2)


async def test_caller_faults_never_count_against_a_circuit_nor_rest_a_credential() -> None:
    runner, health, _ = clocked(breaker_failures=2)
    for _ in range(6):
        script = Script(p=[failure(FailureClass.CALLER_FAULT, status=400)])
        await spent(runner, [attempt("p", "env:A")], [], script)
    assert not health.is_open("p/m")
    assert health.resting("p", "env:A", "m") is None


async def test_a_refusal_to_translate_yields_to_a_resting_option_that_could_carry_it() -> None:
    runner, health, _ = clocked()
    health.rest(RestScope("a", "env:A", "m"), 4, Cause.RATE_LIMIT)

    def refuse(option: Attempt) -> Awaitable[str]:
        async def run() -> str:
            raise Skip(InvalidRequest("cannot translate"))
        return run()

    with pytest.raises(UpstreamError) as caught:
        await runner.run([attempt("b")], refuse, left_out=[attempt("a", "env:A")])
    assert (caught.value.http_status, caught.value.retry_after) == (429, 4)
