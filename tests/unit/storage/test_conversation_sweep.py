"""The sweep removes expired turns, survives a failing round, and does nothing when storage
is off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from cometgate.storage.conversation_sweep import ConversationSweep
from cometgate.storage.conversations import ConversationStore, NewTurn
from cometgate.storage.database import Database

START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_a_round_removes_what_expired(sqlite_database: Database) -> None:
    now = [START]
    store = ConversationStore(sqlite_database, retention=timedelta(days=1),
                              clock=lambda: now[0])
    await store.put(NewTurn("resp_1", "responses", 1, "m", "completed", {}, []))
    sweep = ConversationSweep(store, 3600)
    assert await sweep.sweep_once() == 0
    now[0] = START + timedelta(days=1)
    assert await sweep.sweep_once() == 1
    assert await store.count() == 0


class BrokenStore(ConversationStore):
    async def purge_expired(self) -> int:
        raise OSError("the disk is gone")


async def test_a_failing_round_is_logged_and_survived(
    sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = BrokenStore(sqlite_database, retention=timedelta(days=1))
    with caplog.at_level(logging.ERROR):
        assert await ConversationSweep(store, 3600).sweep_once() == 0
    assert "sweeping expired conversations failed" in caplog.text


async def test_with_storage_off_there_is_no_task() -> None:
    sweep = ConversationSweep(None, 3600)
    sweep.start()
    assert await sweep.sweep_once() == 0
    await sweep.aclose()


async def test_the_task_stops_on_close(sqlite_database: Database) -> None:
    sweep = ConversationSweep(ConversationStore(sqlite_database, retention=timedelta(days=1)),
                              3600)
    sweep.start()
    await sweep.aclose()
    await sweep.aclose()  # twice is harmless
