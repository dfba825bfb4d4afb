"""`cometgate conversations list|purge|sweep` through cli.main, on a database with stored
turns of two keys (one of them expired)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cometgate.cli import main
from cometgate.settings import load_settings
from cometgate.storage.conversations import ConversationStore, NewTurn
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository


@pytest.fixture
def where(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    settings = load_settings(None, data_dir=data, env={"HOME": str(tmp_path)})

    async def fill() -> None:
        async with await open_database(settings.database_url) as database:
            keys = KeyRepository(database)
            alice, _ = await keys.create("alice")
            bob, _ = await keys.create("bob")
            now = datetime.now(UTC)
            for turn_id, key_id, age in [("resp_old", alice.id, 40), ("resp_a", alice.id, 1),
                                         ("resp_b", bob.id, 0)]:
                made = now - timedelta(days=age)
                store = ConversationStore(database, retention=timedelta(days=30),
                                          clock=lambda made=made: made)
                await store.put(NewTurn(turn_id, "responses", key_id, "m", "completed",
                                        {"output": "secret answer"},
                                        [{"id": f"{turn_id}_in", "content": "secret prompt"}]))

    asyncio.run(fill())
    return ["--data-dir", str(data)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_live_turns_never_their_content(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    code, out, err = run(capsys, "conversations", "list", *where)
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].startswith("ID") and [r.split()[0] for r in rows[1:]] == ["resp_b", "resp_a"]
    assert "secret" not in out
    code, out, _ = run(capsys, "conversations", "list", "--key", "alice", *where)
    assert [r.split()[0] for r in out.splitlines()[1:]] == ["resp_a"]


def test_purge_by_key_then_sweep_the_expired(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    code, out, err = run(capsys, "conversations", "purge", "--key", "bob", *where)
    assert (code, out) == (0, "1\n") and "purged 1" in err
    code, out, err = run(capsys, "conversations", "sweep", *where)
    assert (code, out) == (0, "1\n") and "expired" in err
    code, out, _ = run(capsys, "conversations", "purge", "--all", *where)
    assert out == "1\n"


def test_purge_refuses_to_guess_and_names_unknown_keys(
    capsys: pytest.CaptureFixture[str], where: list[str]
) -> None:
    code, out, err = run(capsys, "conversations", "purge", *where)
    assert (code, out) == (1, "") and "--all" in err
    code, out, err = run(capsys, "conversations", "purge", "--key", "carol", *where)
    assert (code, out) == (1, "") and "no API key is named 'carol'" in err
    code, out, err = run(capsys, "conversations", "list", "--limit", "0", *where)
    assert code == 1 and "--limit" in err
