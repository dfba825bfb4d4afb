"""Failed sign-ins are counted per client address: after MAX_FAILURES within WINDOW_SECONDS the
address may not try again until its oldest failure leaves the window, so the admin key cannot be
guessed at the speed of the network. A success clears the address's count."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 10
WINDOW_SECONDS = 300.0
MAX_ADDRESSES = 10_000  # bounds the memory a spray of addresses can take


@dataclass(slots=True)
class SignInThrottle:
    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def wait(self, address: str) -> float | None:
        """Seconds until `address` may try again; None when it may now."""
        recent = self._recent(address)
        if recent is None or len(recent) < self.max_failures:
            return None
        return recent[0] + self.window - self.clock()

    def failed(self, address: str) -> None:
        recent = self._recent(address) or deque()
        recent.append(self.clock())
        self._failures[address] = recent
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float] | None:
        recent = self._failures.get(address)
        if recent is None:
            return None
        horizon = self.clock() - self.window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._failures[address]
            return None
        return recent
