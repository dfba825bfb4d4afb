from __future__ import annotations

import random
from collections import Counter
from typing import Any

from cometgate.routing.health import Blocked, Cause, Health, RestScope
from cometgate.routing.plan import Candidate, Credential, Planner
from cometgate.settings import RoutingSettings

PROVIDER: Any = object()  # planning never calls the provider


def candidate(name: str, priority: int = 0, weight: float = 1.0,
              credentials: tuple[Credential, ...] = ()) -> Candidate:
    return Candidate(name, PROVIDER, f"{name}-model", priority, weight, credentials)


def test_priorities_come_in_order_and_every_candidate_stays_a_fallback() -> None:
    planner = Planner(Health(RoutingSettings()), random.Random(1))
    plan = planner.attempts([candidate("c", 2), candidate("a", 0), candidate("b", 1)], "alias")
    assert [a.candidate.provider_name for a in plan] == ["a", "b", "c"]
    assert all(a.target.model_version == "alias" for a in plan)
    assert plan[0].target.upstream_model == "a-model"


def test_weights_split_traffic_within_a_priority() -> None:
    planner = Planner(Health(RoutingSettings()), random.Random(7))
    group = [candidate("heavy", weight=3), candidate("light", weight=1)]
    firsts = Counter(planner.attempts(group, "m")[0].candidate.provider_name for _ in range(4000))
    share = firsts["heavy"] / 4000
    assert 0.70 < share < 0.80  # 3:1 → 75 %
    assert {a.candidate.provider_name for a in planner.attempts(group, "m")} == {"heavy", "light"}


def test_credentials_rotate_and_cooling_ones_are_left_out() -> None:
    health = Health(RoutingSettings(), clock=lambda: 100.0)
    keys = (Credential("env:A", "a"), Credential("env:B", "b"), Credential("env:C", "c"))
    planner = Planner(health)
    firsts = [planner.attempts([candidate("p", credentials=keys)], "m")[0].credential_id
              for _ in range(3)]
    assert firsts == ["env:A", "env:B", "env:C"]
    health.rest(RestScope("p", "env:B"), 60, Cause.CREDENTIAL)
    plan = planner.plan([candidate("p", credentials=keys)], "m")
    assert [a.credential_id for a in plan.attempts] == ["env:A", "env:C"]
    assert [a.target.credential for a in plan.attempts] == ["a", "c"]
    assert [a.credential_id for a in plan.left_out] == ["env:B"]
    assert plan.left_out[0].blocked(health) == Blocked(Cause.CREDENTIAL, 60)


def test_a_rate_limit_rest_leaves_out_one_model_of_one_provider() -> None:
    health = Health(RoutingSettings())
    keys = (Credential("env:SHARED", "s"),)
    hot, cool = Candidate("p", PROVIDER, "hot", credentials=keys), Candidate(
        "p", PROVIDER, "cool", credentials=keys)
    twin = Candidate("q", PROVIDER, "hot", credentials=keys)  # same env variable, own upstream
    health.rest(RestScope("p", "env:SHARED", "hot"), 1, Cause.RATE_LIMIT)
    planner = Planner(health)
    assert planner.attempts([hot], "m") == []
    assert [a.target.upstream_model for a in planner.attempts([cool], "m")] == ["cool"]
    assert [a.candidate.provider_name for a in planner.attempts([twin], "m")] == ["q"]


def test_open_circuits_are_skipped_and_strictness_reaches_the_target() -> None:
    health = Health(RoutingSettings(breaker_failures=1))
    health.failed("down/down-model")
    planned = Planner(health).plan([candidate("down"), candidate("up", 1)], "m", strict=True)
    plan = planned.attempts
    assert [a.candidate.provider_name for a in plan] == ["up"]
    assert plan[0].target.strict and plan[0].credential_id == ""
    assert [a.candidate.provider_name for a in planned.left_out] == ["down"]
