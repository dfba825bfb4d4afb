"""The usage journal: records are durable at once and committed in the background; segments a
dead process left behind are recovered exactly once."""

from __future__ import annotations

import fcntl
import os
from dataclasses import replace
from pathlib import Path

import orjson
from tests.unit.storage.test_usage_writer import stored_ids, usage_record

from cometgate.storage.database import Database
from cometgate.storage.usage import UsageQueries, UsageRecord
from cometgate.storage.usage_log import UsageLog, _as_json
from cometgate.storage.usage_writer import UsageWriter


async def started_log(database: Database, directory: Path) -> tuple[UsageLog, UsageWriter]:
    writer = UsageWriter(database, commit_budget=0.01)
    writer.start()
    log = UsageLog(writer, directory)
    await log.recover(database)
    return log, writer


async def test_records_are_journaled_then_committed_and_segments_deleted(
    database: Database, tmp_path: Path
) -> None:
    log, writer = await started_log(database, tmp_path / "journal")
    for n in range(20):
        log.record(usage_record(f"r{n}"))
    # Durable before any commit: every line is already in the journal.
    (segment,) = list((tmp_path / "journal").glob("*.jsonl"))
    assert len(segment.read_bytes().splitlines()) == 20
    await log.flush()
    assert len(await stored_ids(database)) == 20
    await log.aclose()
    await writer.aclose()
    assert list((tmp_path / "journal").glob("*.jsonl")) == []  # all committed: nothing kept


async def test_the_journal_is_private(database: Database, tmp_path: Path) -> None:
    log, writer = await started_log(database, tmp_path / "journal")
    log.record(usage_record("private"))
    (segment,) = list((tmp_path / "journal").glob("*.jsonl"))
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o700
    assert segment.stat().st_mode & 0o777 == 0o600
    await log.aclose()
    await writer.aclose()


async def test_a_dead_process_segment_is_recovered_once_and_stored_ids_are_skipped(
    database: Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    log, writer = await started_log(database, journal)
    log.record(usage_record("committed-before-the-kill"))
    await log.flush()
    await log.aclose()
    await writer.aclose()
    # What a killed process leaves: a segment holding a committed and an uncommitted record,
    # and a last line cut short by the kill.
    first = log_line(usage_record("committed-before-the-kill"))
    second = log_line(usage_record("journaled-only"))
    (journal / "9-dead.jsonl").write_bytes(first + second + b'{"request_id": "cut')
    log, writer = await started_log(database, journal)
    assert await stored_ids(database) == {"committed-before-the-kill", "journaled-only"}
    assert list(journal.glob("*.jsonl")) == []
    totals = await UsageQueries(database).totals("key")
    assert totals[0].requests == 2
    await log.aclose()
    await writer.aclose()


async def test_a_segment_locked_by_a_live_process_is_left_alone(
    database: Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    live = journal / "1-live.jsonl"
    live.write_bytes(log_line(usage_record("not-mine")))
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        log, writer = await started_log(database, journal)
        assert await stored_ids(database) == set() and live.exists()
        await log.aclose()
        await writer.aclose()
    finally:
        os.close(fd)


def log_line(record: UsageRecord) -> bytes:
    return orjson.dumps(_as_json(record)) + b"\n"


def reservation_line(record: UsageRecord) -> bytes:
    return orjson.dumps({**_as_json(record), "reservation": True}) + b"\n"


STAND_IN = usage_record("streaming", stream=True, status=500, failure_class="interrupted",
                        output_tokens=0, ttfb_ms=None)


async def test_a_reservation_without_its_record_is_recovered_as_the_record(
    database: Database, tmp_path: Path
) -> None:
    """A stream cut by a kill: its reservation is all there is, and becomes its record."""
    journal = tmp_path / "journal"
    journal.mkdir()
    (journal / "9-dead.jsonl").write_bytes(reservation_line(STAND_IN))
    log, writer = await started_log(database, journal)
    (record,) = await UsageQueries(database).records()
    assert record == STAND_IN
    assert list(journal.glob("*.jsonl")) == []
    await log.aclose()
    await writer.aclose()


async def test_a_reservation_settled_by_its_record_is_not_recovered(
    database: Database, tmp_path: Path
) -> None:
    """The stream ended before the kill: its record (journaled, or already committed) is the
    one, exactly once."""
    journal = tmp_path / "journal"
    ended = usage_record("streaming", stream=True, status=200, output_tokens=40)
    committed = usage_record("committed", stream=True, status=200)
    log, writer = await started_log(database, journal)
    log.record(committed)  # committed before the kill, its segment deleted
    await log.aclose()
    await writer.aclose()
    (journal / "8-dead.jsonl").write_bytes(
        reservation_line(STAND_IN) + reservation_line(replace(committed, status=500)))
    (journal / "9-dead.jsonl").write_bytes(log_line(ended))
    log, writer = await started_log(database, journal)
    assert await stored_ids(database) == {"streaming", "committed"}
    by_id = {r.request_id: r for r in await UsageQueries(database).records()}
    assert by_id["streaming"] == ended and by_id["committed"] == committed
    await log.aclose()
    await writer.aclose()


async def test_a_reservation_keeps_its_segment_until_settled(
    database: Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    log, writer = await started_log(database, journal)
    reservation = log.reserve(STAND_IN)
    log.record(usage_record("other"))
    await log.flush()
    (segment,) = list(journal.glob("*.jsonl"))
    log.record(replace(STAND_IN, status=200, failure_class=None), settles=reservation)
    await log.aclose()
    await writer.aclose()
    assert not segment.exists()  # every record committed and the reservation settled
    assert await stored_ids(database) == {"streaming", "other"}
    (stored,) = [r for r in await UsageQueries(database).records() if r.request_id == "streaming"]
    assert stored.status == 200


async def test_an_unsettled_reservation_keeps_its_segment_for_recovery(
    database: Database, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    log, writer = await started_log(database, journal)
    log.reserve(STAND_IN)
    await log.aclose()
    await writer.aclose()
    (segment,) = list(journal.glob("*.jsonl"))
    assert orjson.loads(segment.read_bytes())["reservation"] is True
    assert await stored_ids(database) == set()  # a reservation is never committed by itself
