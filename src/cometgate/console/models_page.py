"""The Models and providers page: each alias, its candidates, each candidate's circuit
breaker (routing.health, this process's view) and its recent error rate and latency (from the
most recent usage records)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from starlette.requests import Request
from starlette.responses import Response

from cometgate.console.rendering import render
from cometgate.console.session import Session
from cometgate.routing.health import Health
from cometgate.settings import ModelSettings, Settings
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_rollups import UsageRollups

RECENT = 1000  # records the error rates and latencies are computed over


@dataclass(frozen=True, slots=True)
class Recent:
    requests: int
    errors: int
    median_latency_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class CandidateRow:
    provider: str
    kind: str
    upstream_model: str
    priority: int
    weight: float
    circuit: str  # closed | open | half-open
    reopens_in: float | None  # seconds until an open circuit admits a probe
    recent: Recent


@dataclass(frozen=True, slots=True)
class ModelRow:
    id: str
    translation: str
    candidates: tuple[CandidateRow, ...]
    recent: Recent


@dataclass(frozen=True, slots=True)
class ModelsPage:
    settings: Settings
    health: Health
    usage: UsageRollups

    async def page(self, request: Request, session: Session) -> Response:
        records = await self.usage.recent(limit=RECENT)
        rows = [self._row(model, records) for model in self.settings.models]
        return render("models.html", session, models=rows, recent_count=len(records))

    def _row(self, model: ModelSettings, records: Sequence[UsageRecord]) -> ModelRow:
        mine = [r for r in records if r.model == model.info.id]
        return ModelRow(model.info.id, model.translation, tuple(
            self._candidate(c.provider, c.upstream_model, c.priority, c.weight, mine)
            for c in model.candidates), recent_of(mine))

    def _candidate(self, provider: str, upstream_model: str, priority: int, weight: float,
                   records: Sequence[UsageRecord]) -> CandidateRow:
        target = f"{provider}/{upstream_model}"  # routing.plan.Candidate.target_key
        spec = self.settings.provider(provider)
        answered = [r for r in records
                    if r.provider == provider and r.upstream_model == upstream_model]
        return CandidateRow(provider, spec.kind if spec else "", upstream_model, priority,
                            weight, circuit_state(self.health, target),
                            self.health.circuit_wait(target), recent_of(answered))


def circuit_state(health: Health, target: str) -> str:
    if not health.is_open(target):
        return "closed"
    return "open" if health.circuit_wait(target) else "half-open"


def recent_of(records: Sequence[UsageRecord]) -> Recent:
    errors = sum(1 for r in records if r.status >= 400)
    latency = median(r.latency_ms for r in records) if records else None
    return Recent(len(records), errors, latency)
