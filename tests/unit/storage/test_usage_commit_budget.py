"""The writer's commit budget: records spaced below it share a commit, a lone record is still
committed once it has waited the budget, and a reader or a close never waits it out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.unit.storage.test_usage_writer import stored_ids, usage_record

from cometgate.storage.database import Database
from cometgate.storage.usage_log import UsageLog
from cometgate.storage.usage_writer import UsageWriter

LONG = 5.0  # a budget no step of these tests comes near: what ends a wait is never the clock


async def test_a_burst_spaced_below_the_budget_shares_one_commit(sqlite_database: Database) -> None:
    writer = UsageWriter(sqlite_database, commit_budget=LONG)
    writer.start()
    pending = []
    for n in range(12):
        pending.append(asyncio.ensure_future(writer.record(usage_record(f"b{n}"))))
        await asyncio.sleep(0.005)  # a moderate rate: far below the budget between records
    assert writer.commits == 0 and not any(p.done() for p in pending)
    await writer.aclose()  # close flushes: the queued burst goes in at once
    await asyncio.gather(*pending)
    assert writer.commits == 1
    assert await stored_ids(sqlite_database) == {f"b{n}" for n in range(12)}


async def test_a_lone_record_is_committed_once_it_has_waited_the_budget(
    sqlite_database: Database,
) -> None:
    budget = 0.05
    writer = UsageWriter(sqlite_database, commit_budget=budget)
    writer.start()
    loop = asyncio.get_running_loop()
    queued = loop.time()
    await asyncio.wait_for(writer.record(usage_record("alone")), LONG)  # no flush, no close
    assert loop.time() - queued >= budget  # it waited for company that never came
    assert writer.commits == 1 and await stored_ids(sqlite_database) == {"alone"}
    await writer.aclose()


async def test_records_waiting_on_the_budget_are_committed_when_hurried(
    sqlite_database: Database,
) -> None:
    writer = UsageWriter(sqlite_database, commit_budget=LONG)
    writer.start()
    waiting = asyncio.ensure_future(writer.record(usage_record("hurried")))
    await asyncio.sleep(0.01)
    writer.hurry()
    await asyncio.wait_for(waiting, LONG / 2)
    assert writer.commits == 1 and await stored_ids(sqlite_database) == {"hurried"}
    # The next record waits for its own budget again.
    later = asyncio.ensure_future(writer.record(usage_record("later")))
    await asyncio.sleep(0.05)
    assert not later.done()
    await writer.aclose()
    await later


async def test_a_full_batch_does_not_wait_for_the_budget(sqlite_database: Database) -> None:
    writer = UsageWriter(sqlite_database, commit_budget=LONG, max_batch=4)
    writer.start()
    await asyncio.wait_for(
        asyncio.gather(*(writer.record(usage_record(f"f{n}")) for n in range(4))), LONG / 2)
    assert writer.commits == 1
    await writer.aclose()


async def test_records_that_queue_during_a_commit_wait_their_own_budget(
    sqlite_database: Database,
) -> None:
    writer = UsageWriter(sqlite_database, commit_budget=LONG, max_batch=2)
    writer.start()
    first = asyncio.gather(*(writer.record(usage_record(f"x{n}")) for n in range(3)))
    await asyncio.sleep(0.05)
    assert writer.commits == 1  # the full batch of two; the third waits for company
    await writer.aclose()
    await first
    assert writer.commits == 2


async def test_a_reader_flushing_the_journal_does_not_wait_out_the_budget(
    sqlite_database: Database, tmp_path: Path
) -> None:
    writer = UsageWriter(sqlite_database, commit_budget=LONG)
    writer.start()
    log = UsageLog(writer, tmp_path / "journal")
    await log.recover(sqlite_database)
    for n in range(3):
        log.record(usage_record(f"j{n}"))
    await asyncio.wait_for(log.flush(), LONG / 2)
    assert await stored_ids(sqlite_database) == {"j0", "j1", "j2"}
    await log.aclose()
    await writer.aclose()


@pytest.mark.parametrize("budget", [-0.001, 10.5, float("nan")])
def test_the_budget_is_bounded(sqlite_database: Database, budget: float) -> None:
    with pytest.raises(ValueError, match=r"commit_budget must be between 0 and 10\.0 seconds"):
        UsageWriter(sqlite_database, commit_budget=budget)
