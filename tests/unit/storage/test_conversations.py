"""The conversation store on SQLite and PostgreSQL: key scoping, retention with an injected
clock, chains, item pages, operator listing and purges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cometgate.storage.conversations import (
    ConversationStore,
    NewTurn,
    TurnNotFoundError,
    UnknownCursorError,
)
from cometgate.storage.database import Database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.schema import stored_turn_items

START = datetime(2030, 1, 1, tzinfo=UTC)
RETENTION = timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database: Database, clock: Clock) -> ConversationStore:
    return ConversationStore(database, retention=RETENTION, clock=clock)


def _item(item_id: str, text: str = "hi") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}


def _turn(turn_id: str, *, key_id: int = 1, previous_id: str | None = None,
          items: int = 1, api: str = "responses") -> NewTurn:
    return NewTurn(
        id=turn_id, api=api, key_id=key_id, model="m", status="completed",
        body={"id": turn_id, "object": "response", "output": [{"type": "message",
                                                               "id": f"msg_{turn_id}"}]},
        items=[_item(f"{turn_id}_in{n}", f"text {n}") for n in range(items)],
        previous_id=previous_id,
    )


async def test_a_turn_is_read_back_whole_by_its_key(store: ConversationStore) -> None:
    stored = await store.put(_turn("resp_a", items=2))
    got = await store.get("responses", "resp_a", 1)
    assert got == stored
    assert got.body["output"][0]["id"] == "msg_resp_a"
    assert got.created_at == START and got.expires_at == START + RETENTION


async def test_another_key_an_unknown_id_and_another_api_are_not_found(
    store: ConversationStore,
) -> None:
    await store.put(_turn("resp_a", key_id=1))
    for api, turn_id, key_id in [("responses", "resp_a", 2), ("responses", "resp_b", 1),
                                 ("interactions", "resp_a", 1)]:
        with pytest.raises(TurnNotFoundError) as caught:
            await store.get(api, turn_id, key_id)
        assert caught.value.turn_id == turn_id
    with pytest.raises(TurnNotFoundError):
        await store.delete("responses", "resp_a", 2)
    with pytest.raises(TurnNotFoundError):
        await store.items_page("responses", "resp_a", 2, limit=20, order="asc")
    assert (await store.get("responses", "resp_a", 1)).id == "resp_a"  # untouched


async def test_an_expired_turn_is_invisible_then_swept(
    store: ConversationStore, clock: Clock
) -> None:
    await store.put(_turn("resp_old"))
    clock.now = START + timedelta(days=10)
    await store.put(_turn("resp_new"))
    clock.now = START + RETENTION - timedelta(seconds=1)
    assert (await store.get("responses", "resp_old", 1)).id == "resp_old"
    clock.now = START + RETENTION
    with pytest.raises(TurnNotFoundError):
        await store.get("responses", "resp_old", 1)
    assert [t.id for t in await store.list()] == ["resp_new"]
    assert await store.count() == 2  # invisible before the sweep, still on disk
    assert await store.purge_expired() == 1
    assert await store.count() == 1
    assert await store.purge_expired() == 0


async def test_deleting_removes_the_turn_and_its_items(store: ConversationStore) -> None:
    await store.put(_turn("resp_a", items=3))
    await store.delete("responses", "resp_a", 1)
    with pytest.raises(TurnNotFoundError):
        await store.get("responses", "resp_a", 1)
    with pytest.raises(TurnNotFoundError):
        await store.delete("responses", "resp_a", 1)
    assert await store.count() == 0


async def test_a_conversation_is_its_chain_oldest_first(store: ConversationStore) -> None:
    await store.put(_turn("resp_1", items=2))
    await store.put(_turn("resp_2", previous_id="resp_1"))
    await store.put(_turn("resp_3", previous_id="resp_2", items=0))
    chain = await store.conversation("responses", "resp_3", 1)
    assert [c.turn.id for c in chain] == ["resp_1", "resp_2", "resp_3"]
    assert [[i["id"] for i in c.items] for c in chain] == [
        ["resp_1_in0", "resp_1_in1"], ["resp_2_in0"], []]
    assert [c.turn.id for c in await store.conversation("responses", "resp_2", 1)] == [
        "resp_1", "resp_2"]


async def test_a_broken_chain_names_the_missing_turn(store: ConversationStore) -> None:
    await store.put(_turn("resp_1"))
    await store.put(_turn("resp_2", previous_id="resp_1"))
    await store.put(_turn("resp_3", previous_id="resp_2"))
    await store.delete("responses", "resp_2", 1)
    with pytest.raises(TurnNotFoundError) as caught:
        await store.conversation("responses", "resp_3", 1)
    assert caught.value.turn_id == "resp_2"
    with pytest.raises(TurnNotFoundError) as caught:
        await store.conversation("responses", "resp_3", 2)
    assert caught.value.turn_id == "resp_3"


async def test_a_chain_never_crosses_keys(store: ConversationStore) -> None:
    await store.put(_turn("resp_1", key_id=1))
    # A turn of key 2 that names key 1's turn as its previous one (ids are public strings).
    await store.put(_turn("resp_2", key_id=2, previous_id="resp_1"))
    with pytest.raises(TurnNotFoundError) as caught:
        await store.conversation("responses", "resp_2", 2)
    assert caught.value.turn_id == "resp_1"


async def test_continuing_a_conversation_renews_its_whole_chain(
    store: ConversationStore, clock: Clock
) -> None:
    await store.put(_turn("resp_1"))
    clock.now = START + timedelta(days=20)
    await store.put(_turn("resp_2", previous_id="resp_1"))
    clock.now = START + timedelta(days=45)  # resp_1 alone would have expired at day 30
    assert [c.turn.id for c in await store.conversation("responses", "resp_2", 1)] == [
        "resp_1", "resp_2"]
    clock.now = START + timedelta(days=50)
    with pytest.raises(TurnNotFoundError):
        await store.conversation("responses", "resp_2", 1)


async def test_renewal_never_touches_another_keys_turns(
    store: ConversationStore, clock: Clock
) -> None:
    await store.put(_turn("resp_1", key_id=1))
    clock.now = START + timedelta(days=20)
    await store.put(_turn("resp_2", key_id=2, previous_id="resp_1"))
    clock.now = START + RETENTION
    with pytest.raises(TurnNotFoundError):
        await store.get("responses", "resp_1", 1)


async def test_item_pages_follow_cursors_in_both_orders(store: ConversationStore) -> None:
    await store.put(_turn("resp_a", items=5))
    ids = [f"resp_a_in{n}" for n in range(5)]

    async def page(**kwargs: Any) -> tuple[list[str], bool]:
        found = await store.items_page("responses", "resp_a", 1, **kwargs)
        return [item["id"] for item in found.items], found.has_more

    assert await page(limit=2, order="asc") == (ids[:2], True)
    assert await page(limit=2, order="asc", after=ids[1]) == (ids[2:4], True)
    assert await page(limit=2, order="asc", after=ids[3]) == (ids[4:], False)
    assert await page(limit=20, order="desc") == (ids[::-1], False)
    assert await page(limit=2, order="desc", after=ids[3]) == ([ids[2], ids[1]], True)
    assert await page(limit=20, order="asc", before=ids[2]) == (ids[:2], False)
    assert await page(limit=20, order="desc", before=ids[2]) == ([ids[4], ids[3]], False)
    assert await page(limit=20, order="asc", after=ids[0], before=ids[3]) == (ids[1:3], False)
    with pytest.raises(UnknownCursorError) as caught:
        await page(limit=2, order="asc", after="msg_nope")
    assert caught.value.parameter == "after"


async def test_operators_list_newest_first_and_filter(
    store: ConversationStore, clock: Clock
) -> None:
    for n, key_id in enumerate([1, 2, 1]):
        clock.now = START + timedelta(minutes=n)
        await store.put(_turn(f"resp_{n}", key_id=key_id))
    await store.put(_turn("int_9", api="interactions"))
    assert [t.id for t in await store.list(api="responses")] == ["resp_2", "resp_1", "resp_0"]
    assert [t.id for t in await store.list(api="responses", key_id=1)] == ["resp_2", "resp_0"]
    assert [t.id for t in await store.list(api="responses", limit=1, after="resp_2")] == [
        "resp_1"]
    assert [t.id for t in await store.list(api="interactions")] == ["int_9"]


async def test_purges_by_key_by_age_and_all(store: ConversationStore, clock: Clock) -> None:
    for n, key_id in enumerate([1, 2, 1, 2]):
        clock.now = START + timedelta(days=n)
        await store.put(_turn(f"resp_{n}", key_id=key_id, items=2))
    assert await store.purge(key_id=2) == 2
    assert await store.purge(created_before=START + timedelta(days=1)) == 1
    assert [t.id for t in await store.list()] == ["resp_2"]
    assert await store.purge() == 1
    assert await store.count() == 0


async def test_background_turns_are_updated_in_place(store: ConversationStore) -> None:
    await store.put(_turn("resp_a"))
    done = {"id": "resp_a", "object": "response", "status": "completed", "output": []}
    assert await store.replace_body("responses", "resp_a", 1, status="completed", body=done)
    assert (await store.get("responses", "resp_a", 1)).body == done
    assert not await store.replace_body("responses", "resp_a", 2, status="failed", body=done)


async def test_a_status_guard_lets_only_the_first_of_cancel_and_finish_win(
    store: ConversationStore,
) -> None:
    await store.put(replace(_turn("resp_a"), status="in_progress"))
    await store.put(replace(_turn("resp_b", key_id=2), status="queued"))
    await store.put(_turn("resp_c"))
    unfinished = await store.with_status("responses", ("queued", "in_progress"))
    assert sorted(t.id for t in unfinished) == ["resp_a", "resp_b"]
    cancelled = {"id": "resp_a", "status": "cancelled"}
    assert await store.replace_body("responses", "resp_a", 1, status="cancelled",
                                    body=cancelled, only_from=("queued", "in_progress"))
    assert not await store.replace_body("responses", "resp_a", 1, status="completed",
                                        body={"id": "resp_a"},
                                        only_from=("queued", "in_progress"))
    assert (await store.get("responses", "resp_a", 1)).body == cancelled
    assert await store.with_status("interactions", ("queued",)) == []


def test_retention_must_be_positive(sqlite_database: Database) -> None:
    with pytest.raises(ValueError, match="positive"):
        ConversationStore(sqlite_database, retention=timedelta(0))


async def test_an_operator_purges_one_turn_by_id(store: ConversationStore) -> None:
    await store.put(_turn("resp_a", items=2))
    await store.put(_turn("resp_b", key_id=2))
    assert await store.purge(turn_id="resp_a") == 1
    assert await store.purge(turn_id="resp_a") == 0
    assert [t.id for t in await store.list()] == ["resp_b"]


async def test_deleting_a_key_deletes_its_conversations(
    database: Database, store: ConversationStore
) -> None:
    keys = KeyRepository(database)
    gone, _ = await keys.create("gone")
    kept, _ = await keys.create("kept")
    await store.put(_turn("resp_gone", key_id=gone.id, items=2))
    await store.put(_turn("resp_kept", key_id=kept.id, items=2))
    await keys.delete("gone")
    assert [t.id for t in await store.list()] == ["resp_kept"]
    assert len((await store.conversation("responses", "resp_kept", kept.id))[0].items) == 2
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(stored_turn_items.c.turn_id))).scalars().all()
    assert set(rows) == {"resp_kept"}
