"""Trying attempts in order until one answers, steered by each failure's class.

    transient      retry the same target (exponential backoff with jitter, bounded), then
                   move on; counts against the target's circuit
    rate_limited   rest the (provider, credential, upstream model) for Retry-After (or a
                   default) and move on at once; on the last option, a Retry-After up to
                   `max_retry_after` is waited out
    credential /   rest the (provider, credential) for every model and move on
    quota
    caller_fault   return at once: another upstream would refuse the same request; never
                   counts against a circuit nor rests a credential
    unknown        return at once: nothing suggests another attempt would fare better

When every option is spent, the caller hears when to come back: Retry-After is the time until
the first option of the plan can be tried again (a rest or an open circuit ending, or a short
wait after a transient failure), in whole seconds, at least 1. The status is the last
failure's when an upstream was tried; when none could be tried, 429 RESOURCE_EXHAUSTED if every
option rests after a rate limit, else 503 UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from cometgate.errors import FailureClass, UpstreamError, UpstreamUnavailable
from cometgate.routing.health import Blocked, Cause, Health, RestScope
from cometgate.routing.plan import Attempt
from cometgate.settings import RoutingSettings

T = TypeVar("T")

_MOVE_ON = {FailureClass.RATE_LIMITED, FailureClass.CREDENTIAL, FailureClass.QUOTA}


class Skip(Exception):
    """Raised by an attempt function that cannot use this attempt at all (e.g. the request
    cannot be translated to this upstream's dialect); the next attempt is tried."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(str(reason))
        self.reason = reason


class Failover:
    def __init__(
        self,
        policy: RoutingSettings,
        health: Health,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._policy = policy
        self._health = health
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def run(
        self,
        attempts: Sequence[Attempt],
        attempt: Callable[[Attempt], Awaitable[T]],
        *,
        left_out: Sequence[Attempt] = (),
        on_failure: Callable[[Attempt, UpstreamError], None] = lambda a, e: None,
    ) -> T:
        """`left_out`: the options the plan could not use (resting, circuit open); they
        tell how soon the caller may come back."""
        last: UpstreamError | None = None
        skipped: BaseException | None = None
        failed: dict[int, UpstreamError] = {}  # id(option) → how it failed last
        for index, option in enumerate(attempts):
            key = option.candidate.target_key
            if not self._health.admit(key):
                continue
            last_option = index == len(attempts) - 1
            try:
                return await self._on_target(option, attempt, on_failure, last_option)
            except Skip as skip:
                self._health.released(key)
                skipped = skipped or skip.reason
            except UpstreamError as exc:
                last = failed[id(option)] = exc
                if exc.failure_class not in _MOVE_ON | {FailureClass.TRANSIENT}:
                    raise
        waits = [wait for option in [*attempts, *left_out]
                 if (wait := self._wait(option, failed.get(id(option)))) is not None]
        # A refusal to carry the request speaks for the caller only when no upstream that
        # could carry it is merely waiting: otherwise coming back later is the answer.
        if last is None and skipped is not None and not waits:
            raise skipped
        raise self._spent(waits, last)

    def _spent(self, waits: Sequence[Blocked], last: UpstreamError | None) -> UpstreamError:
        soonest = whole_seconds(min(w.seconds for w in waits)) if waits else None
        if last is not None:
            if last.http_status in (429, 503):
                last.retry_after = soonest if soonest is not None else _default_wait(
                    last, self._policy)
            return last
        if not waits:
            return UpstreamUnavailable(
                "No upstream is available for this model right now (circuits open or "
                "credentials resting); retry shortly.",
                retry_after=whole_seconds(self._policy.breaker_open_seconds),
            )
        if all(w.cause is Cause.RATE_LIMIT for w in waits):
            return UpstreamError(
                "Every upstream for this model is rate limited right now; retry after the "
                "time given.", failure_class=FailureClass.RATE_LIMITED, http_status=429,
                status="RESOURCE_EXHAUSTED", retry_after=soonest)
        return UpstreamUnavailable(
            "No upstream is available for this model right now (circuits open or credentials "
            "resting); retry after the time given.", retry_after=soonest)

    def _wait(self, option: Attempt, failure: UpstreamError | None) -> Blocked | None:
        """How long until the option can be tried again; None for one that cannot serve
        this request at all (skipped) — it says nothing about when to come back."""
        blocked = option.blocked(self._health)
        if blocked is not None or failure is None:
            return blocked
        # Tried and failed, yet usable at once (a transient fault below the circuit's
        # threshold, or a keyless upstream's 429, which rests nothing).
        cause = (Cause.RATE_LIMIT if failure.failure_class is FailureClass.RATE_LIMITED
                 else Cause.TRANSIENT)
        return Blocked(cause, _default_wait(failure, self._policy))

    async def _on_target(
        self,
        option: Attempt,
        attempt: Callable[[Attempt], Awaitable[T]],
        on_failure: Callable[[Attempt, UpstreamError], None],
        last_option: bool,
    ) -> T:
        key = option.candidate.target_key
        retries = 0
        while True:
            try:
                result = await attempt(option)
            except UpstreamError as exc:
                on_failure(option, exc)
                self._judge(option, exc)
                wait = self._retry_wait(exc, retries, last_option)
                if wait is None or not self._health.admit(key):
                    raise  # spent, or the circuit opened meanwhile: move on
                retries += 1
                await self._sleep(wait)
                continue
            except BaseException:
                self._health.released(key)  # no verdict (cancelled, or a refusal of ours)
                raise
            self._health.succeeded(key)
            return result

    def _judge(self, option: Attempt, exc: UpstreamError) -> None:
        key = option.candidate.target_key
        kind = exc.failure_class
        if kind in (FailureClass.TRANSIENT, FailureClass.UNKNOWN):
            self._health.failed(key)
        else:
            self._health.released(key)
        provider, credential = option.candidate.provider_name, option.credential_id
        if not credential:
            return
        if kind is FailureClass.RATE_LIMITED:
            rest = (exc.retry_after if exc.retry_after is not None
                    else self._policy.rate_limit_cooldown)
            scope = RestScope(provider, credential, option.candidate.upstream_model)
            self._health.rest(scope, rest, Cause.RATE_LIMIT)
        elif kind in (FailureClass.CREDENTIAL, FailureClass.QUOTA):
            self._health.rest(RestScope(provider, credential), self._policy.credential_cooldown,
                              Cause.CREDENTIAL)

    def _retry_wait(self, exc: UpstreamError, retries: int, last_option: bool) -> float | None:
        """Seconds to wait before trying the same target again, or None to move on."""
        if retries >= self._policy.retries:
            return None
        if exc.failure_class is FailureClass.TRANSIENT:
            return self._backoff(retries + 1)
        wait = exc.retry_after
        rate_limited = exc.failure_class is FailureClass.RATE_LIMITED
        if rate_limited and last_option and wait is not None:
            return float(wait) if wait <= self._policy.max_retry_after else None
        return None

    def _backoff(self, retry: int) -> float:
        ceiling = min(self._policy.backoff_max, self._policy.backoff_base * 2.0 ** (retry - 1))
        return ceiling * (0.5 + self._rng.random() / 2)  # jitter spreads synchronized retries


def whole_seconds(seconds: float) -> int:
    """A wait as Retry-After can say it: whole seconds, rounded up (coming back early only
    meets the same refusal), at least 1."""
    return max(1, math.ceil(seconds))


def _default_wait(error: UpstreamError, policy: RoutingSettings) -> float:
    if error.retry_after is not None:
        return error.retry_after
    if error.failure_class is FailureClass.RATE_LIMITED:
        return policy.rate_limit_cooldown
    return policy.backoff_max
