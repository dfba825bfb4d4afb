"""`cometgate serve --workers 2`: one port, two gateway processes, one set of limits, one
local model, a usage journal per worker.

A live server (SQLite, its default) in front of a fake upstream on a real socket:
- connections made one per request reach both workers (each access log line carries its
  process id), and rpm=N with max_concurrent=C admits exactly N requests in the minute with
  never more than C at the upstream, whichever worker serves them; a budget is never overspent;
- a worker killed with kill -9 right after answering is replaced, and its replacement commits
  the records the dead one had only journaled (the commit budget is made long so they are
  still uncommitted), while the live worker's journal is left alone: every answered request
  has exactly one record;
- the bundled local model runs once (one llama.cpp worker, a child of the parent), and both
  gateway workers answer through it; SIGTERM to the parent stops all of it and it exits 0.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from cometgate.dialects.gemini.estimate import estimate
from tests.contract.upstreams import served
from tests.e2e.conftest import MODEL as LOCAL_MODEL
from tests.e2e.conftest import (
    SMALL_CONTEXT_CONFIG,
    child_pids,
    cmdline,
    create_key,
    run_cli,
    worker_pids,
)
from tests.e2e.fake_gateway import (
    ADMIN_KEY,
    MODEL,
    ServeProcess,
    cost_of,
    gateway_config,
    gateway_env,
    start_serve,
)
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream

RPM = 12
MAX_CONCURRENT = 3
CALLERS = 8
MAX_ATTEMPTS = 200  # bounds the load whatever the gateway answers
PATH = f"/v1beta/models/{MODEL}:generateContent"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {"maxOutputTokens": 20}}
REAL_COST = cost_of(7, 5)  # the fake's default usage
WORST_COST = cost_of(estimate(orjson.dumps(BODY))[0], 20)
# Room for ten answers at their real cost plus one worst case in flight.
BUDGET = 10 * REAL_COST + WORST_COST
ACCESS = re.compile(r"\[(\d+)\] cometgate\.access (\w+) POST ")
# Records a worker journals wait this long for their commit: a kill -9 right after the
# answers finds them journaled and not yet committed.
LONG_BUDGET_CONFIG = "storage: {usage: {commit_budget_ms: 1000}}\n"
DEADLINE_SECONDS = 60.0
STOP_BOUND_SECONDS = 40  # uvicorn's graceful 10 s, the model worker's stop, a loaded machine
SPAWNED = "multiprocessing.spawn"  # in a gateway worker's command line


@dataclass(frozen=True)
class Workers:
    gateway: ServeProcess
    gate: UpstreamGate
    data_dir: Path


async def _two_workers(tmp_path: Path, extra_config: str = "") -> AsyncIterator[Workers]:
    gate = UpstreamGate(FakeOpenAIUpstream().app, delay_seconds=0.05)
    async with served(gate) as (upstream_url,):
        config = gateway_config(upstream_url) + extra_config
        gateway = await start_serve(tmp_path, "workers", config, tmp_path / "data",
                                    gateway_env(), workers=2)
        try:
            yield Workers(gateway, gate, tmp_path / "data")
        finally:
            gateway.stop()


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    async for running in _two_workers(tmp_path):
        yield running


@pytest.fixture
async def long_budget_workers(tmp_path: Path) -> AsyncIterator[Workers]:
    async for running in _two_workers(tmp_path, LONG_BUDGET_CONFIG):
        yield running


def _gateway_workers(parent: int) -> list[int]:
    return [pid for pid in child_pids(parent) if SPAWNED in cmdline(pid)]


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()
            and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]


def _served_by(log_path: Path, ids: list[str]) -> dict[str, int]:
    """Request id → pid of the worker whose access log line names it, once every one of `ids`
    has its line (a worker writes it just after the response's last byte)."""
    step = 0.05
    for _ in range(int(DEADLINE_SECONDS / step)):
        found = {m.group(2): int(m.group(1))
                 for m in ACCESS.finditer(log_path.read_text(errors="replace"))}
        if set(ids) <= set(found):
            return found
        time.sleep(step)
    raise AssertionError(f"no access log line for {sorted(set(ids) - set(found))}")


def _key_with(data_dir: Path, *args: str) -> str:
    done = run_cli("keys", "create", "--name", "limited", "--data-dir", str(data_dir), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _records(gateway: ServeProcess) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(gateway.base_url + "/admin/usage", params={"format": "csv"},
                                  headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return {row["request_id"]: row for row in csv.DictReader(io.StringIO(response.text))}


async def _records_of(gateway: ServeProcess, ids: set[str]) -> dict[str, dict[str, str]]:
    """The records once all of `ids` are committed (each worker commits on its own budget)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while True:
        records = await _records(gateway)
        if ids <= set(records) or asyncio.get_running_loop().time() > deadline:
            return records
        await asyncio.sleep(0.2)


async def _away_from_minute_end(margin_seconds: float = 15.0) -> None:
    now = datetime.now(UTC)
    left = 60 - now.second - now.microsecond / 1e6
    if left < margin_seconds:
        await asyncio.sleep(left + 0.05)


async def _call(base_url: str, key: str) -> httpx.Response:
    # A connection per request: the kernel hands each to whichever worker accepts it first.
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(base_url + PATH, json=BODY, headers={"x-goog-api-key": key})


async def test_both_workers_serve_and_rpm_holds_exactly_across_them(workers: Workers) -> None:
    key = _key_with(workers.data_dir, "--rpm", str(RPM), "--concurrency", str(MAX_CONCURRENT))
    await _away_from_minute_end()
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    answered: list[str] = []
    refused: list[str] = []
    other: list[str] = []
    attempts = iter(range(MAX_ATTEMPTS))

    async def caller() -> None:
        for _ in attempts:
            response = await _call(workers.gateway.base_url, key)
            if response.status_code == 200:
                answered.append(response.headers["x-request-id"])
                continue
            message = response.json()["error"]["message"]
            if response.status_code == 429 and "requests per minute" in message:
                refused.append(message)
                return
            if response.status_code == 429 and f"max_concurrent={MAX_CONCURRENT}" in message:
                continue  # a slot frees as soon as another request ends
            other.append(f"{response.status_code} {response.text[:300]}")
            return

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    assert datetime.now(UTC).replace(second=0, microsecond=0) == minute, "minute ended"
    assert not other
    assert len(answered) == RPM == workers.gate.served
    assert refused and refused[0] == (
        f"Quota exceeded for requests per minute (rpm={RPM}) on this API key.")
    assert workers.gate.most <= MAX_CONCURRENT
    served_by = _served_by(workers.gateway.log_path, answered)
    assert {served_by[i] for i in answered} <= set(_gateway_workers(workers.gateway.process.pid))
    assert len(set(served_by.values())) == 2, "one worker accepted every connection"
    records = await _records_of(workers.gateway, set(answered))
    assert set(answered) == set(records)


async def test_a_budget_is_never_overspent_across_workers(workers: Workers) -> None:
    key = _key_with(workers.data_dir, "--budget", str(BUDGET),
                    "--concurrency", str(MAX_CONCURRENT))
    answered: list[str] = []
    exhausted: list[str] = []
    attempts = iter(range(MAX_ATTEMPTS))

    async def caller() -> None:
        for _ in attempts:
            response = await _call(workers.gateway.base_url, key)
            if response.status_code == 200:
                answered.append(response.headers["x-request-id"])
                continue
            message = response.json()["error"]["message"]
            assert response.status_code == 429, message
            if message.startswith("Budget exhausted"):
                exhausted.append(message)
                return

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    assert exhausted
    records = await _records_of(workers.gateway, set(answered))
    assert set(records) == set(answered)
    spent = sum((Decimal(r["cost_usd"]) for r in records.values()), Decimal(0))
    assert answered and spent == len(answered) * REAL_COST <= BUDGET


async def test_a_killed_worker_is_replaced_and_its_journal_recovered_alone(
    long_budget_workers: Workers,
) -> None:
    workers = long_budget_workers
    key = create_key(workers.data_dir, "journal")
    parent = workers.gateway.process.pid
    before = set(_gateway_workers(parent))
    assert len(before) == 2
    answered: list[str] = []
    for _ in range(10):  # until both workers have answered some
        responses = await asyncio.gather(
            *(_call(workers.gateway.base_url, key) for _ in range(6)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        answered += [r.headers["x-request-id"] for r in responses]
        served_by = _served_by(workers.gateway.log_path, answered)
        if {served_by[i] for i in answered} == before:
            break
    victim = served_by[answered[-1]]
    survivor = (before - {victim}).pop()
    journal = workers.data_dir / "usage-journal"
    survivor_segments = {p.name for p in journal.glob(f"{survivor}-*.jsonl")}
    assert survivor_segments, "the live worker journals in segments of its own"
    os.kill(victim, signal.SIGKILL)
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        now = set(_gateway_workers(parent))
        if len(now) == 2 and victim not in now:
            break
        await asyncio.sleep(0.1)
    replacement = (set(_gateway_workers(parent)) - before).pop()
    records = await _records_of(workers.gateway, set(answered))
    assert set(answered) <= set(records)
    assert len(records) == len(answered)  # nothing twice: the survivor's journal was not replayed
    log = workers.gateway.log_path.read_text(errors="replace")
    assert re.search(rf"\[{replacement}\] cometgate\.usage recovered \d+ usage records", log), (
        "the replacement recovered nothing: the records were committed before the kill")
    assert survivor_segments <= {p.name for p in journal.glob(f"{survivor}-*.jsonl")}
    assert not list(journal.glob(f"{victim}-*.jsonl"))


async def test_the_local_model_runs_once_for_both_workers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "local")
    gateway = await start_serve(tmp_path, "local", SMALL_CONTEXT_CONFIG, data_dir,
                                gateway_env(), workers=2)
    try:
        parent = gateway.process.pid
        gateway_workers = _gateway_workers(parent)
        assert len(gateway_workers) == 2
        assert len(worker_pids(parent)) == 1  # one llama.cpp worker, the parent's child
        assert not [w for g in gateway_workers for w in worker_pids(g)]
        path = f"/v1beta/models/{LOCAL_MODEL}:generateContent"
        body = orjson.dumps({"contents": [{"parts": [{"text": "Hi"}]}],
                             "generationConfig": {"maxOutputTokens": 4}})
        pids: set[int] = set()

        async def ask() -> str:
            async with httpx.AsyncClient(timeout=60.0) as http:
                response = await http.post(gateway.base_url + path, content=body, headers={
                    "x-goog-api-key": key, "content-type": "application/json"})
            assert response.status_code == 200, response.text
            return response.headers["x-request-id"]

        # Until both workers have answered through it. Calls go in concurrent bursts: one
        # at a time, the kernel may hand every new connection to the same idle worker.
        for _ in range(10):
            ids = list(await asyncio.gather(*(ask() for _ in range(4))))
            served = _served_by(gateway.log_path, ids)
            pids.update(served[request_id] for request_id in ids)
            if len(pids) == 2:
                break
        assert pids == set(gateway_workers)
        assert len(worker_pids(parent)) == 1
        # SIGTERM to the parent stops everything it started, gracefully, and it exits 0.
        children = child_pids(parent)
        gateway.process.terminate()
        assert await asyncio.to_thread(gateway.process.wait, STOP_BOUND_SECONDS) == 0
        assert not _alive(children)
    finally:
        gateway.stop()
