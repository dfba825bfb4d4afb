"""Which upstreams to try for one request, in order.

Candidates are grouped by priority (lowest number first); within a group the order is a
weighted random permutation, so traffic splits by weight while every candidate stays a
fallback. Each candidate's credentials are rotated round-robin, and those resting after a 429
(for this model) or a rejection (for every model) are left out, as are targets whose circuit is
open; the plan keeps what it left out, so that a caller can be told when to come back.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from cometgate.providers.base import Provider, Target
from cometgate.routing.health import Blocked, Cause, Health


@dataclass(frozen=True, slots=True)
class Credential:
    id: str  # public, loggable ("env:NAME"); the secret never is
    secret: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    provider_name: str
    provider: Provider
    upstream_model: str
    priority: int = 0
    weight: float = 1.0
    credentials: tuple[Credential, ...] = ()

    @property
    def target_key(self) -> str:
        return f"{self.provider_name}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class Attempt:
    candidate: Candidate
    target: Target
    credential_id: str  # "" when the provider needs none

    def blocked(self, health: Health) -> Blocked | None:
        """Why this option cannot be tried now (the longer wait when both its circuit and a
        rest hold it), or None."""
        candidate = self.candidate
        circuit = health.circuit_wait(candidate.target_key)
        rest = health.resting(candidate.provider_name, self.credential_id,
                              candidate.upstream_model) if self.credential_id else None
        if circuit is not None and (rest is None or circuit >= rest.seconds):
            return Blocked(Cause.CIRCUIT, circuit)
        return rest


@dataclass(frozen=True, slots=True)
class Plan:
    attempts: list[Attempt]
    left_out: list[Attempt]  # options resting or behind an open circuit when planned


class Planner:
    def __init__(self, health: Health, rng: random.Random | None = None) -> None:
        self._health = health
        self._rng = rng or random.Random()
        self._rotation: dict[str, itertools.count[int]] = {}

    def attempts(
        self, candidates: Sequence[Candidate], model_version: str, *, strict: bool = False
    ) -> list[Attempt]:
        return self.plan(candidates, model_version, strict=strict).attempts

    def plan(
        self, candidates: Sequence[Candidate], model_version: str, *, strict: bool = False
    ) -> Plan:
        ordered: list[Attempt] = []
        left_out: list[Attempt] = []
        for priority in sorted({c.priority for c in candidates}):
            group = [c for c in candidates if c.priority == priority]
            for candidate in self._weighted_order(group):
                for credential in self._credentials(candidate):
                    target = Target(candidate.upstream_model, model_version,
                                    credential.secret if credential else None, strict=strict)
                    option = Attempt(candidate, target, credential.id if credential else "")
                    blocked = option.blocked(self._health) is not None
                    (left_out if blocked else ordered).append(option)
        return Plan(ordered, left_out)

    def _weighted_order(self, group: list[Candidate]) -> list[Candidate]:
        if len(group) == 1:
            return group
        # Efraimidis-Spirakis: sorting by u^(1/w) draws a permutation weighted by w.
        keyed = [(self._rng.random() ** (1.0 / c.weight), i) for i, c in enumerate(group)]
        return [group[i] for _, i in sorted(keyed, reverse=True)]

    def _credentials(self, candidate: Candidate) -> list[Credential | None]:
        credentials = candidate.credentials
        if not credentials:
            return [None]
        counter = self._rotation.setdefault(candidate.provider_name, itertools.count())
        start = next(counter) % len(credentials)
        return list(credentials[start:] + credentials[:start])
