"""Two gateway replicas on one PostgreSQL and one Redis hold a key's limits exactly between them.

Two `cometgate serve` processes share a fresh PostgreSQL schema (COMETGATE_DATABASE_URL with
?search_path=) and the test Redis (COMETGATE_REDIS_URL), in front of one fake upstream on a real
socket that holds each request briefly and counts how many are in flight. Concurrent callers
spread unary and streamed requests over both replicas:
- with rpm=N and max_concurrent=C: exactly N requests succeed in the minute, and the upstream
  never sees more than C at once;
- with a budget B: what the usage log says was spent never exceeds B;
- in both, the usage log holds one record per answered request, with the tokens the callers
  were told in usageMetadata;
- a replica killed with kill -9 while it holds a key's only concurrency slot frees it for the
  other replica within the lease TTL (short here, so the test is quick), while a live replica's
  slot is renewed and outlives that TTL.

The limiter's Redis keys are named by key id and the prefix is not configurable, so the key's
id is made unique (the schema's id sequence starts at a random number) and its Redis keys are
deleted afterwards.

Needs COMETGATE_TEST_POSTGRES_URL and COMETGATE_TEST_REDIS_URL (scripts/services): skips
without them, fails without them in CI.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from cometgate.dialects.gemini.estimate import estimate
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.contract.upstreams import served
from tests.e2e.fake_gateway import (
    ADMIN_KEY,
    MODEL,
    ServeProcess,
    cost_of,
    final_usage,
    gateway_config,
    gateway_env,
    start_serve,
)
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.unit.limits.conftest import delete_prefix, redis_url
from tests.unit.storage.conftest import fresh_postgres_schema_url, postgres_base_url

CALLERS = 10
RPM = 12
MAX_CONCURRENT = 3
UPSTREAM_HOLD_SECONDS = 0.05
MAX_ATTEMPTS = 400  # bounds each phase whatever the gateway answers
PATHS = (
    f"/v1beta/models/{MODEL}:generateContent",
    f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
    f"/v1beta/models/{MODEL}:streamGenerateContent",
)
MAX_OUTPUT = 40
LEASE_TTL_SECONDS = 3
# After a kill, the survivor is asked at this pace until the slot is free; the slot must free
# within the lease TTL, plus one renewal interval the lease may have been renewed just before
# the kill, plus slack for a loaded machine.
KILL_POLL_SECONDS = 0.1
KILL_FREE_BOUND_SECONDS = LEASE_TTL_SECONDS * 4 / 3 + 3
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {"maxOutputTokens": MAX_OUTPUT}}
PROMPT_ESTIMATE = estimate(orjson.dumps(BODY))[0]
WORST_COST = cost_of(PROMPT_ESTIMATE, MAX_OUTPUT)
REAL_COST = cost_of(7, 5)  # the fake's default usage
# Room for ten requests at their real cost plus one worst case in flight; MAX_CONCURRENT worst
# cases fit in it too, so refusals come from spending, not from the first reservations.
BUDGET = 10 * REAL_COST + WORST_COST


@dataclass
class Outcome:
    """What the callers of one phase got: usage by request id, and the refusals' messages."""

    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Replicas:
    gateways: tuple[ServeProcess, ServeProcess]
    gate: UpstreamGate
    database_url: str
    redis_url: str


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    postgres, redis = postgres_base_url(), redis_url()
    gate = UpstreamGate(FakeOpenAIUpstream().app, delay_seconds=UPSTREAM_HOLD_SECONDS)
    async for database_url in fresh_postgres_schema_url(postgres):
        await _start_ids_at_random(database_url)
        env = gateway_env(COMETGATE_DATABASE_URL=database_url, COMETGATE_REDIS_URL=redis)
        async with served(gate) as (upstream_url,):
            config = gateway_config(upstream_url) + (
                f"limits: {{lease_ttl_seconds: {LEASE_TTL_SECONDS}}}\n")
            first = await start_serve(tmp_path, "a", config, tmp_path / "a", env)
            try:
                second = await start_serve(tmp_path, "b", config, tmp_path / "b", env)
                try:
                    yield Replicas((first, second), gate, database_url, redis)
                finally:
                    second.stop()
            finally:
                first.stop()


async def _start_ids_at_random(database_url: str) -> None:
    """Key ids name the limiter's Redis keys: a random start keeps them apart from other
    runs' (and from the leftovers of a run that was interrupted)."""
    start = 1_000_000 + secrets.randbelow(1_000_000_000)
    async with await open_database(database_url) as database:
        async with database.engine.begin() as conn:
            await conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('api_keys', 'id'), {start})"))


async def _key(replicas: Replicas, name: str, **policy: Any) -> tuple[int, str]:
    async with await open_database(replicas.database_url) as database:
        record, key = await KeyRepository(database).create(name, **policy)
    return record.id, key


async def _drive(replicas: Replicas, key: str, *, stop_on: str) -> Outcome:
    """CALLERS concurrent callers, round robin over both replicas and the three methods.
    A concurrency refusal is retried; a refusal whose message holds `stop_on` ends a caller."""
    outcome = Outcome()
    numbers = itertools.count()
    done = asyncio.Event()

    async def caller(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            number = next(numbers)
            if number >= MAX_ATTEMPTS:
                return
            gateway = replicas.gateways[number % 2]
            path = PATHS[(number // 2) % len(PATHS)]
            response = await http.post(gateway.base_url + path, json=BODY,
                                       headers={"x-goog-api-key": key})
            usage = final_usage(path, response)
            if usage is not None:
                outcome.received[response.headers["x-request-id"]] = usage
            elif response.status_code == 429:
                message = response.json()["error"]["message"]
                outcome.refusals.append(message)
                if stop_on in message:
                    done.set()
            else:
                outcome.other.append(f"{response.status_code} {response.text[:300]}")
                done.set()

    async with httpx.AsyncClient(timeout=30.0) as http:
        await asyncio.gather(*(caller(http) for _ in range(CALLERS)))
    return outcome


async def _recorded(replicas: Replicas, key_id: int) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        # Each replica commits its usage records in batches; its own /admin/usage waits for
        # those in flight. Asking replica 0 first lands its records before replica 1 reads.
        await http.get(replicas.gateways[0].base_url + "/admin/usage",
                       headers={"authorization": f"Bearer {ADMIN_KEY}"})
        response = await http.get(
            replicas.gateways[1].base_url + "/admin/usage",
            params={"format": "csv", "key_id": str(key_id)},
            headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return {row["request_id"]: row for row in csv.DictReader(io.StringIO(response.text))}


def _assert_records_match(records: dict[str, dict[str, str]], outcome: Outcome) -> None:
    assert set(records) == set(outcome.received)
    for request_id, usage in outcome.received.items():
        row = records[request_id]
        assert (int(row["prompt_tokens"]), int(row["output_tokens"])) == (
            usage["promptTokenCount"], usage["candidatesTokenCount"])
    assert sum(int(r["prompt_tokens"]) + int(r["output_tokens"]) for r in records.values()) == (
        sum(u["totalTokenCount"] for u in outcome.received.values()))


async def _away_from_minute_end(margin_seconds: float = 15.0) -> None:
    now = datetime.now(UTC)
    left = 60 - now.second - now.microsecond / 1e6
    if left < margin_seconds:
        await asyncio.sleep(left + 0.05)


async def test_rpm_and_concurrency_hold_exactly_across_two_replicas(replicas: Replicas) -> None:
    key_id, key = await _key(replicas, "replicated", rpm=RPM, max_concurrent=MAX_CONCURRENT)
    try:
        await _away_from_minute_end()
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        outcome = await _drive(replicas, key, stop_on="requests per minute")
        assert datetime.now(UTC).replace(second=0, microsecond=0) == minute, "minute ended"
        assert not outcome.other
        assert len(outcome.received) == RPM
        assert any(f"rpm={RPM}" in m for m in outcome.refusals)
        assert replicas.gate.most <= MAX_CONCURRENT
        assert replicas.gate.served == RPM
        _assert_records_match(await _recorded(replicas, key_id), outcome)
    finally:
        await delete_prefix(replicas.redis_url, f"cg:{{{key_id}}}")


async def test_a_budget_is_never_overspent_across_two_replicas(replicas: Replicas) -> None:
    key_id, key = await _key(replicas, "budgeted", budget_total_usd=BUDGET,
                             max_concurrent=MAX_CONCURRENT)
    try:
        outcome = await _drive(replicas, key, stop_on="Budget exhausted")
        assert not outcome.other
        assert any("Budget exhausted" in m for m in outcome.refusals)
        records = await _recorded(replicas, key_id)
        _assert_records_match(records, outcome)
        spent = sum((Decimal(r["cost_usd"]) for r in records.values()), Decimal(0))
        assert spent == len(records) * REAL_COST
        assert spent <= BUDGET
        # Every admitted request reserved its worst case within the budget.
        assert len(records) >= 1
        assert replicas.gate.most <= MAX_CONCURRENT
    finally:
        await delete_prefix(replicas.redis_url, f"cg:{{{key_id}}}")


async def test_a_slot_held_by_a_killed_replica_frees_within_the_lease_ttl(
    replicas: Replicas,
) -> None:
    key_id, key = await _key(replicas, "held", max_concurrent=1)
    holder, survivor = replicas.gateways
    headers = {"x-goog-api-key": key}
    path = PATHS[0]
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            replicas.gate.close()  # the upstream holds the holder's call: a slow answer
            held = asyncio.create_task(
                http.post(holder.base_url + path, json=BODY, headers=headers))
            await replicas.gate.wait_for_waiting(1)
            refused = await http.post(survivor.base_url + path, json=BODY, headers=headers)
            assert refused.status_code == 429, refused.text
            assert "max_concurrent=1" in refused.json()["error"]["message"]
            # The holder lives past its lease's first TTL: renewed, its slot stays taken.
            await asyncio.sleep(LEASE_TTL_SECONDS * 1.5)
            still = await http.post(survivor.base_url + path, json=BODY, headers=headers)
            assert still.status_code == 429, still.text
            holder.kill9()
            killed_at = asyncio.get_running_loop().time()
            with pytest.raises(httpx.TransportError):
                await held
            replicas.gate.open()
            answer = await _first_success(http, survivor.base_url + path, headers, killed_at)
        waited = answer - killed_at
        assert waited <= KILL_FREE_BOUND_SECONDS
    finally:
        replicas.gate.open()
        await delete_prefix(replicas.redis_url, f"cg:{{{key_id}}}")


async def _first_success(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], since: float
) -> float:
    """When a call first succeeded, asking every KILL_POLL_SECONDS; fails past the bound."""
    loop = asyncio.get_running_loop()
    answers: list[int] = []
    while loop.time() - since <= KILL_FREE_BOUND_SECONDS:
        response = await http.post(url, json=BODY, headers=headers)
        if response.status_code == 200:
            return loop.time()
        assert response.status_code == 429, response.text
        answers.append(response.status_code)
        await asyncio.sleep(KILL_POLL_SECONDS)
    raise AssertionError(f"the slot was still taken {KILL_FREE_BOUND_SECONDS} s after the "
                         f"kill ({len(answers)} calls refused)")
