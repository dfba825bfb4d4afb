"""The batch store on SQLite and PostgreSQL: a request is claimed by exactly one worker, its
result stored only by the claim's holder, claimed again once its lease lapses; the batch
moves to RUNNING on its first claim and SUCCEEDED after its last result; cancel and expiry
stop only unstarted requests; reads are scoped to the creating key. The clock is passed in."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cometgate.storage.batches import (
    CANCELLED,
    EXPIRED,
    ITEM_CANCELLED,
    ITEM_EXPIRED,
    ITEM_PENDING,
    ITEM_SUCCEEDED,
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


def _batch(ident: str = "b1", key_id: int = 1, *, expires: datetime | None = None) -> Batch:
    return Batch(id=ident, key_id=key_id, model="m", display_name="d", state=PENDING,
                 input_file=None, output_file=None, client_ip="127.0.0.1", request_count=2,
                 created_at=T0, updated_at=T0, ended_at=None,
                 expires_at=expires or T0 + timedelta(hours=48))


def _items(count: int = 2) -> list[NewItem]:
    return [NewItem({"contents": [{"parts": [{"text": str(i)}]}]}, {"key": f"k{i}"},
                    Decimal("0.25")) for i in range(count)]


async def test_each_request_is_claimed_by_one_worker_only(database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch(), _items())
    [first, second] = await store.claimable(T0, 10)
    claims = await asyncio.gather(*(store.claim(first, owner, T0 + LEASE, T0)
                                     for owner in ("a", "b", "c")))
    assert len([c for c in claims if c is not None]) == 1
    claimed = next(c for c in claims if c is not None)
    assert (claimed.key_id, claimed.client_ip, claimed.request["contents"][0]["parts"]) == (
        1, "127.0.0.1", [{"text": "0"}])
    assert (await store.get(1, "b1")).state == RUNNING  # type: ignore[union-attr]
    assert [c.position for c in await store.claimable(T0, 10)] == [second.position]


async def test_only_the_holder_stores_a_result_and_the_last_one_ends_the_batch(
        database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch(), _items())
    items = await store.claimable(T0, 10)
    for item in items:
        assert await store.claim(item, "a", T0 + LEASE, T0) is not None
    assert not await store.finish("b", "b1", 0, succeeded=True, result={"x": 1}, now=T0)
    assert await store.finish("a", "b1", 0, succeeded=True, result={"response": {}}, now=T0)
    assert not await store.finish("a", "b1", 0, succeeded=True, result={"again": 1}, now=T0)
    assert (await store.get(1, "b1")).state == RUNNING  # type: ignore[union-attr]
    assert await store.finish("a", "b1", 1, succeeded=False, result={"error": {}}, now=T0)
    batch = await store.get(1, "b1")
    assert batch is not None and (batch.state, batch.ended_at) == (SUCCEEDED, T0)
    results = await store.results("b1")
    assert [(r.position, r.metadata, r.result) for r in results] == [
        (0, {"key": "k0"}, {"response": {}}), (1, {"key": "k1"}, {"error": {}})]
    assert await store.counts("b1") == {ITEM_SUCCEEDED: 1, "failed": 1}


async def test_a_lapsed_lease_is_claimed_again_and_the_old_holder_cannot_answer(
        database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch(), _items(1))
    [item] = await store.claimable(T0, 10)
    await store.claim(item, "dead", T0 + LEASE, T0)
    assert await store.claimable(T0 + LEASE - timedelta(seconds=1), 10) == []
    await store.renew("dead", [("b1", 0)], T0 + 2 * LEASE)
    assert await store.claimable(T0 + LEASE, 10) == []  # renewed: still held
    later = T0 + 2 * LEASE
    [again] = await store.claimable(later, 10)
    assert await store.claim(again, "alive", later + LEASE, later) is not None
    assert not await store.finish("dead", "b1", 0, succeeded=True, result={}, now=later)
    assert await store.finish("alive", "b1", 0, succeeded=True, result={"r": 1}, now=later)


async def test_a_released_request_goes_back_to_pending(database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch(), _items(1))
    [item] = await store.claimable(T0, 10)
    await store.claim(item, "a", T0 + LEASE, T0)
    await store.release("b", "b1", 0)  # not the holder: nothing changes
    assert await store.claimable(T0, 10) == []
    await store.release("a", "b1", 0)
    assert await store.counts("b1") == {ITEM_PENDING: 1}


async def test_cancel_stops_unstarted_requests_and_is_scoped_to_the_key(
        database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch(), _items())
    [first, _] = await store.claimable(T0, 10)
    await store.claim(first, "a", T0 + LEASE, T0)
    assert not await store.cancel(2, "b1", T0)  # another key's batch
    assert await store.cancel(1, "b1", T0)
    assert await store.claimable(T0, 10) == []
    # The running request is still open: the batch ends when it does.
    assert (await store.get(1, "b1")).state == RUNNING  # type: ignore[union-attr]
    assert await store.finish("a", "b1", 0, succeeded=True, result={"r": 1}, now=T0)
    batch = await store.get(1, "b1")
    assert batch is not None and batch.state == CANCELLED
    assert not await store.cancel(1, "b1", T0)
    assert await store.counts("b1") == {ITEM_SUCCEEDED: 1, ITEM_CANCELLED: 1}
    assert await store.get(2, "b1") is None
    assert not await store.delete(2, "b1")
    assert await store.delete(1, "b1")
    assert await store.results("b1") == []


async def test_expiry_ends_unfinished_batches_and_outstanding_counts_open_requests(
        database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch("old", expires=T0 + timedelta(hours=1)), _items())
    await store.create(_batch("new"), _items(3))
    await store.create(_batch("theirs", key_id=2), _items(1))
    assert await store.outstanding(1) == Decimal("1.25")
    # Past its expiry, nothing of a batch is claimed, even before the sweep ends it.
    late = T0 + timedelta(hours=1)
    assert {c.batch_id for c in await store.claimable(late, 10)} == {"new", "theirs"}
    [old_item, *_] = await store.claimable(T0, 10)
    assert old_item.batch_id == "old"
    assert await store.claim(old_item, "a", late + LEASE, late) is None
    assert await store.expire(T0 + timedelta(minutes=59)) == 0
    assert await store.expire(T0 + timedelta(hours=1)) == 1
    assert (await store.get(1, "old")).state == EXPIRED  # type: ignore[union-attr]
    assert await store.counts("old") == {ITEM_EXPIRED: 2}
    assert await store.outstanding(1) == Decimal("0.75")
    page, more = await store.page(1, 0, 1)
    assert more and len(page) == 1
    page, more = await store.page(1, 1, 5)
    assert not more and len(page) == 1


async def test_requests_finishing_together_end_their_batch(database: Database) -> None:
    """Two last requests finished at the same moment by two workers: whichever counts last
    sees both done (each counting before the other committed would leave it running)."""
    store = BatchStore(database)
    for round_ in range(10):
        ident = f"together-{round_}"
        await store.create(_batch(ident), _items())
        for item, owner in zip(await store.claimable(T0, 10), ("a", "b"), strict=True):
            await store.claim(item, owner, T0 + LEASE, T0)
        await asyncio.gather(
            store.finish("a", ident, 0, succeeded=True, result={}, now=T0),
            store.finish("b", ident, 1, succeeded=True, result={}, now=T0))
        assert (await store.get(1, ident)).state == SUCCEEDED  # type: ignore[union-attr]


async def test_claimable_passes_over_busy_models_and_waiting_keys(database: Database) -> None:
    store = BatchStore(database)
    await store.create(_batch("first"), _items(3))
    await store.create(replace(_batch("second", key_id=2), model="other",
                               created_at=T0 + timedelta(seconds=1)), _items(1))
    assert [c.batch_id for c in await store.claimable(T0, 1)] == ["first"]
    assert [c.batch_id for c in await store.claimable(T0, 1, skip_models=["m"])] == ["second"]
    assert [c.batch_id for c in await store.claimable(T0, 5, skip_keys=[1])] == ["second"]
    assert await store.claimable(T0, 5, skip_models=["m", "other"]) == []
