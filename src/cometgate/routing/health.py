"""What the gateway has learnt about its upstreams: a circuit breaker per target and rests of
credentials. In-process state, owned by one Gateway (never a module global).

Rests are scoped as providers limit: a rate limit rests one (provider, credential, upstream
model) — providers count requests per model and project, so the credential's other models stay
usable — while a rejected credential or an exhausted quota rests the (provider, credential)
whole. The provider's name is part of every scope: two providers naming the same `env:`
variable reach different upstreams, whose verdicts are their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cometgate.settings import RoutingSettings


class Cause(StrEnum):
    """Why an option cannot be tried now."""

    RATE_LIMIT = "rate_limit"  # its (credential, model) rests after a 429
    CREDENTIAL = "credential"  # its credential rests: rejected, or its quota is spent
    CIRCUIT = "circuit"  # its target's circuit is open
    TRANSIENT = "transient"  # usable, but it just failed: come back after a short wait


@dataclass(frozen=True, slots=True)
class Blocked:
    cause: Cause
    seconds: float  # until the option can be tried again


@dataclass(frozen=True, slots=True)
class RestScope:
    provider: str
    credential: str
    model: str = ""  # "" rests the credential for every model


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False  # half-open: one request is testing the target


@dataclass(slots=True)
class Health:
    """Breaker states: closed (failures below the threshold) → open (skip the target for
    `breaker_open_seconds`) → half-open (one probe admitted; success closes, failure reopens).
    """

    policy: RoutingSettings
    clock: Callable[[], float] = time.monotonic
    _breakers: dict[str, _Breaker] = field(default_factory=dict)
    _rests: dict[RestScope, tuple[float, Cause]] = field(default_factory=dict)

    def admissible(self, target: str) -> bool:
        """Whether the target may be planned for; does not claim the half-open probe."""
        breaker = self._breakers.get(target)
        if breaker is None or breaker.opened_at is None:
            return True
        elapsed = self.clock() - breaker.opened_at
        return not breaker.probing and elapsed >= self.policy.breaker_open_seconds

    def admit(self, target: str) -> bool:
        """Claims the right to send to the target now (the probe, when half-open)."""
        breaker = self._breakers.get(target)
        if breaker is None or breaker.opened_at is None:
            return True
        if breaker.probing:
            return False
        if self.clock() - breaker.opened_at < self.policy.breaker_open_seconds:
            return False
        breaker.probing = True
        return True

    def succeeded(self, target: str) -> None:
        self._breakers.pop(target, None)

    def failed(self, target: str) -> None:
        breaker = self._breakers.setdefault(target, _Breaker())
        breaker.failures += 1
        if breaker.probing or breaker.failures >= self.policy.breaker_failures:
            breaker.opened_at = self.clock()
            breaker.probing = False

    def released(self, target: str) -> None:
        """A probe ended without a verdict on the target (e.g. the caller's own fault)."""
        breaker = self._breakers.get(target)
        if breaker is not None:
            breaker.probing = False

    def is_open(self, target: str) -> bool:
        breaker = self._breakers.get(target)
        return breaker is not None and breaker.opened_at is not None

    def circuit_wait(self, target: str) -> float | None:
        """Seconds until the target's open circuit admits a probe (0 while a probe is out);
        None when the circuit is closed or ready for its probe."""
        breaker = self._breakers.get(target)
        if breaker is None or breaker.opened_at is None:
            return None
        left = self.policy.breaker_open_seconds - (self.clock() - breaker.opened_at)
        if breaker.probing:
            return max(left, 0.0)
        return left if left > 0 else None

    def rest(self, scope: RestScope, seconds: float, cause: Cause) -> None:
        """A later, shorter rest never shortens the one in force."""
        until = self.clock() + seconds
        current = self._rests.get(scope)
        if current is None or until > current[0]:
            self._rests[scope] = (until, cause)

    def resting(self, provider: str, credential: str, model: str) -> Blocked | None:
        """The longer of the credential's rest and its rest for this model, if any."""
        if not self._rests:  # the usual case, on every request's plan
            return None
        longest: Blocked | None = None
        for scope in (RestScope(provider, credential), RestScope(provider, credential, model)):
            left = self._left(scope)
            if left is not None and (longest is None or left.seconds > longest.seconds):
                longest = left
        return longest

    def _left(self, scope: RestScope) -> Blocked | None:
        rest = self._rests.get(scope)
        if rest is None:
            return None
        left = rest[0] - self.clock()
        if left <= 0:
            del self._rests[scope]
            return None
        return Blocked(rest[1], left)
