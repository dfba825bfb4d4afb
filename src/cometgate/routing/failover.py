"""Trying attempts in order until one answers, steered by each failure's class.

    transient      retry the same target (exponential backoff with jitter, bounded), then
                   move on; counts against the target's circuit
    rate_limited   cool the credential for Retry-After (or a default) and move on at once;
                   on the last option, a Retry-After up to `max_retry_after` is waited out
    credential /   cool the credential and move on
    quota
    caller_fault   return at once: another upstream would refuse the same request
    unknown        return at once: nothing suggests another attempt would fare better

When every option is spent the last failure is raised, with a Retry-After for 429 and 503.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from cometgate.errors import FailureClass, UpstreamError, UpstreamUnavailable
from cometgate.routing.health import Health
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
        on_failure: Callable[[Attempt, UpstreamError], None] = lambda a, e: None,
    ) -> T:
        last: UpstreamError | None = None
        skipped: BaseException | None = None
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
                last = exc
                if exc.failure_class not in _MOVE_ON | {FailureClass.TRANSIENT}:
                    raise
        if last is not None:
            raise _with_retry_after(last, self._policy)
        if skipped is not None:
            raise skipped
        raise UpstreamUnavailable(
            "No upstream is available for this model right now (circuits open or credentials "
            "cooling down); retry shortly.",
            retry_after=self._policy.breaker_open_seconds,
        )

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
        if kind is FailureClass.RATE_LIMITED and option.credential_id:
            self._health.cool(option.credential_id,
                              exc.retry_after or self._policy.rate_limit_cooldown)
        elif kind in (FailureClass.CREDENTIAL, FailureClass.QUOTA) and option.credential_id:
            self._health.cool(option.credential_id, self._policy.credential_cooldown)

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


def _with_retry_after(error: UpstreamError, policy: RoutingSettings) -> UpstreamError:
    """429 and 503 always tell the caller when to come back."""
    if error.http_status in (429, 503) and error.retry_after is None:
        error.retry_after = (
            policy.rate_limit_cooldown if error.http_status == 429 else policy.backoff_max
        )
    return error
