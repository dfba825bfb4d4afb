"""What the gateway has learnt about its upstreams: a circuit breaker per target and a
cool-down per credential. In-process state, owned by one Gateway (never a module global)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cometgate.settings import RoutingSettings


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
    _cool_until: dict[str, float] = field(default_factory=dict)

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

    def cool(self, credential: str, seconds: float) -> None:
        until = self.clock() + seconds
        self._cool_until[credential] = max(until, self._cool_until.get(credential, 0.0))

    def cooling(self, credential: str) -> float:
        """Seconds this credential must still rest (0 when usable)."""
        until = self._cool_until.get(credential)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._cool_until[credential]
            return 0.0
        return left
