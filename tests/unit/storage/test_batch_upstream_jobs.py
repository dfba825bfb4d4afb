"""Batches handed to an upstream's batch API, on SQLite and PostgreSQL: a job is worked on by
one replica at a time (its claim is conditional, lapsing with its lease); its requests are
never claimable by the gateway's workers until it falls back; its results are stored once,
by its holder, ending the batch as its requests (or the job's end) say; what its requests
reserved is held until then. The clock is passed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cometgate.storage.batch_upstream_jobs import (
    JOB_DONE,
    JOB_FALLBACK,
    JOB_RUNNING,
    JOB_SUBMITTING,
    SettledItem,
    UpstreamJobStore,
)
from cometgate.storage.batches import (
    CANCELLED,
    FAILED,
    ITEM_CANCELLED,
    ITEM_FAILED,
    ITEM_SUCCEEDED,
    ITEM_UPSTREAM,
    PENDING,
    RUNNING,
    SUCCEEDED,
    Batch,
    BatchStore,
    NewItem,
)
from cometgate.storage.database import Database

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _batch(ident: str = "b1") -> Batch:
    return Batch(id=ident, key_id=1, model="m", display_name="d", state=PENDING,
                 input_file=None, output_file=None, client_ip=None, request_count=2,
                 created_at=T0, updated_at=T0, ended_at=None,
                 expires_at=T0 + timedelta(hours=48))


def _items() -> list[NewItem]:
    return [NewItem({"contents": [{"parts": [{"text": str(i)}]}]}, {"key": f"k{i}"},
                    Decimal("0.25")) for i in range(2)]


async def _created(database: Database) -> tuple[UpstreamJobStore, BatchStore]:
    jobs, store = UpstreamJobStore(database), BatchStore(database)
    await jobs.create(_batch(), _items(), provider="p", kind="gemini", upstream_model="up")
    return jobs, store


async def test_a_job_is_claimed_by_one_replica_until_its_lease_lapses(
        database: Database) -> None:
    jobs, store = await _created(database)
    assert await jobs.due(T0, 10) == ["b1"]
    claims = await asyncio.gather(*(jobs.claim("b1", owner, T0 + LEASE, T0)
                                    for owner in ("a", "b", "c")))
    held = [claim for claim in claims if claim is not None]
    assert len(held) == 1 and held[0].state == JOB_SUBMITTING and held[0].upstream_id is None
    assert await jobs.due(T0, 10) == []
    assert await jobs.claim("b1", "late", T0 + LEASE, T0 + LEASE) is not None  # lapsed
    # Its requests are the upstream's: no gateway worker claims them; they hold their cost.
    assert await store.claimable(T0, 10) == []
    assert await store.outstanding(1) == Decimal("0.5")


async def test_the_upstream_id_is_kept_and_the_results_are_settled_once(
        database: Database) -> None:
    jobs, store = await _created(database)
    await jobs.claim("b1", "a", T0 + LEASE, T0)
    assert await jobs.submitted("b1", "a", "batches/up1", T0)
    assert (await store.get(1, "b1")).state == RUNNING  # type: ignore[union-attr]
    await jobs.release("b1", "a", T0 + timedelta(seconds=5))
    assert await jobs.due(T0, 10) == []  # not before its next poll
    job = await jobs.claim("b1", "b", T0 + LEASE, T0 + timedelta(seconds=5))
    assert job is not None and (job.state, job.upstream_id) == (JOB_RUNNING, "batches/up1")
    answers = [SettledItem(0, ITEM_SUCCEEDED, {"response": {"candidates": []}}),
               SettledItem(1, ITEM_FAILED, {"error": {"code": 3, "message": "no"}})]
    assert not await jobs.settle("b1", "a", answers, end_state=None, now=T0)  # not a's now
    assert await jobs.settle("b1", "b", answers, end_state=None, now=T0)
    assert not await jobs.settle("b1", "b", answers, end_state=None, now=T0)
    assert (await jobs.get("b1")).state == JOB_DONE  # type: ignore[union-attr]
    assert (await store.get(1, "b1")).state == SUCCEEDED  # type: ignore[union-attr]
    assert [r.result for r in await store.results("b1")] == [a.result for a in answers]
    assert await store.outstanding(1) == Decimal(0)


async def test_a_job_ended_so_ends_its_batch_so(database: Database) -> None:
    jobs, store = await _created(database)
    await jobs.claim("b1", "a", T0 + LEASE, T0)
    await jobs.settle("b1", "a", [SettledItem(0, ITEM_FAILED, {"error": {"code": 13}}),
                                  SettledItem(1, ITEM_FAILED, {"error": {"code": 13}})],
                      end_state=FAILED, now=T0, note="refused")
    assert (await store.get(1, "b1")).state == FAILED  # type: ignore[union-attr]


async def test_a_cancelled_batch_waits_for_its_upstream_job(database: Database) -> None:
    jobs, store = await _created(database)
    assert await store.cancel(1, "b1", T0)
    assert (await store.get(1, "b1")).state == PENDING  # type: ignore[union-attr]
    assert await jobs.stop("b1", "cancelled", T0)
    assert not await jobs.stop("b1", "cancelled", T0)  # asked once
    job = await jobs.claim("b1", "a", T0 + LEASE, T0)
    assert job is not None and job.stop == "cancelled" and not job.stop_sent
    await jobs.settle("b1", "a", [SettledItem(0, ITEM_SUCCEEDED, {"response": {}}),
                                  SettledItem(1, ITEM_CANCELLED, None)],
                      end_state=CANCELLED, now=T0)
    assert (await store.get(1, "b1")).state == CANCELLED  # type: ignore[union-attr]


async def test_falling_back_gives_the_requests_to_the_gateways_workers(
        database: Database) -> None:
    jobs, store = await _created(database)
    await jobs.claim("b1", "a", T0 + LEASE, T0)
    assert await jobs.fall_back("b1", "a", "503 from upstream", T0)
    assert (await jobs.get("b1")).state == JOB_FALLBACK  # type: ignore[union-attr]
    assert await jobs.due(T0 + LEASE, 10) == []
    assert [c.position for c in await store.claimable(T0, 10)] == [0, 1]
    assert {i.state for i in await jobs.items("b1")} == {"pending"}
    assert ITEM_UPSTREAM not in {r.state for r in await store.results("b1")}
