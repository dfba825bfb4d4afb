"""Stored conversations: turns of a stateful API (Responses API responses, later Gemini
Interactions API interactions) kept so that a later turn can continue from them.

Invariants:
- Every read and delete on behalf of a caller names the key that created the turn; a turn of
  another key, an expired turn and a missing turn are the same answer (None / not found), so
  a caller learns nothing about ids it does not own.
- A turn is invisible from its `expires_at` on, whether or not the sweep has removed it yet;
  `purge_expired` removes such turns with their items.
- Continuing a conversation renews it: storing a turn that continues a chain moves the
  chain's expiry to the new turn's, so a conversation lives `retention` after its last turn
  rather than breaking when its first turn ages out.
- The clock is injected, so retention is tested without waiting.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Row, and_, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cometgate.storage.database import Database
from cometgate.storage.schema import stored_turn_items, stored_turns

Clock = Callable[[], datetime]
Order = Literal["asc", "desc"]
# A chain longer than this is refused rather than walked: far beyond any real conversation,
# and it bounds the work one request can cause.
MAX_CHAIN_LENGTH = 10_000
_PURGE_BATCH = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


class TurnNotFoundError(LookupError):
    """A turn is missing, expired, deleted or another key's; `turn_id` names which."""

    def __init__(self, turn_id: str) -> None:
        super().__init__(turn_id)
        self.turn_id = turn_id


class UnknownCursorError(ValueError):
    """An `after`/`before` cursor names no item of the turn."""

    def __init__(self, parameter: str, item_id: str) -> None:
        super().__init__(f"{parameter}: no input item has id {item_id!r}")
        self.parameter = parameter
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class NewTurn:
    """What a client hands the store: the object as the caller got it and its input items."""

    id: str
    api: str  # "responses" | "interactions"
    key_id: int
    model: str
    status: str
    body: Mapping[str, Any]
    items: Sequence[Mapping[str, Any]]  # each with a string "id"
    previous_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredTurn:
    id: str
    api: str
    key_id: int
    model: str
    status: str
    body: dict[str, Any]
    previous_id: str | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ConversationTurn:
    """A turn with its input items, as a rebuilt conversation lists it."""

    turn: StoredTurn
    items: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ItemPage:
    items: tuple[dict[str, Any], ...]
    has_more: bool


class ConversationStore:
    """Stored turns in `stored_turns` and `stored_turn_items`, on SQLite or PostgreSQL."""

    def __init__(
        self, database: Database, *, retention: timedelta, clock: Clock = utc_now
    ) -> None:
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        self._engine = database.engine
        self.retention = retention
        self._clock = clock

    async def put(self, turn: NewTurn) -> StoredTurn:
        """Keep `turn` and its items; the chain it continues now expires with it."""
        now = self._clock()
        expires_at = now + self.retention
        item_rows = [
            {"turn_id": turn.id, "position": position, "item_id": str(item["id"]),
             "body": _dumps(item)}
            for position, item in enumerate(turn.items)
        ]
        async with self._engine.begin() as conn:
            await conn.execute(insert(stored_turns).values(
                id=turn.id, api=turn.api, key_id=turn.key_id, previous_id=turn.previous_id,
                model=turn.model, status=turn.status, body=_dumps(turn.body),
                created_at=now, expires_at=expires_at,
            ))
            if item_rows:
                await conn.execute(insert(stored_turn_items), item_rows)
            if turn.previous_id is not None:
                chain = self._chain_ids(turn.api, turn.previous_id, turn.key_id)
                await conn.execute(
                    update(stored_turns)
                    .where(stored_turns.c.id.in_(select(chain.c.id)))
                    .values(expires_at=expires_at)
                )
        return StoredTurn(turn.id, turn.api, turn.key_id, turn.model, turn.status,
                          dict(turn.body), turn.previous_id, now, expires_at)

    async def replace_body(self, api: str, turn_id: str, key_id: int, *, status: str,
                           body: Mapping[str, Any], only_from: Sequence[str] = ()) -> bool:
        """Update a live turn's object (a background response that finished); False if gone,
        or, with `only_from`, if its status is none of those (a cancel and a finish racing
        each other: the first one wins, in one statement)."""
        condition = self._visible(api, turn_id, key_id)
        if only_from:
            condition = and_(condition, stored_turns.c.status.in_(only_from))
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(stored_turns).where(condition).values(status=status, body=_dumps(body))
            )
            return bool(result.rowcount)

    async def with_status(self, api: str, statuses: Sequence[str]
                          ) -> builtins.list[StoredTurn]:
        """Every live turn of `api` in one of `statuses`, whatever its key (for the gateway
        itself, never for a caller)."""
        turns = stored_turns.c
        query = select(stored_turns).where(turns.api == api, turns.status.in_(statuses),
                                           turns.expires_at > self._clock())
        async with self._engine.connect() as conn:
            return [_turn(row) for row in await conn.execute(query)]

    async def get(self, api: str, turn_id: str, key_id: int) -> StoredTurn:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(stored_turns).where(self._visible(api, turn_id, key_id))
            )).one_or_none()
        if row is None:
            raise TurnNotFoundError(turn_id)
        return _turn(row)

    async def delete(self, api: str, turn_id: str, key_id: int) -> None:
        """Remove a turn and its items; later turns that continued it can no longer be rebuilt."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(stored_turns).where(self._visible(api, turn_id, key_id))
            )
            if not result.rowcount:
                raise TurnNotFoundError(turn_id)
            await conn.execute(delete(stored_turn_items)
                               .where(stored_turn_items.c.turn_id == turn_id))

    async def conversation(
        self, api: str, turn_id: str, key_id: int
    ) -> builtins.list[ConversationTurn]:
        """The chain ending at `turn_id`, oldest turn first, each with its input items.

        Raises TurnNotFoundError naming the first turn of the chain that is not visible (the
        one asked for, or an ancestor that was deleted or has expired).
        """
        async with self._engine.connect() as conn:
            turns = await self._chain(conn, api, turn_id, key_id)
            items = await self._items_of(conn, [turn.id for turn in turns])
        return [ConversationTurn(turn, items.get(turn.id, ())) for turn in turns]

    async def items_page(
        self, api: str, turn_id: str, key_id: int, *, limit: int, order: Order,
        after: str | None = None, before: str | None = None,
    ) -> ItemPage:
        """One page of a turn's input items, in `order` of position, strictly between cursors."""
        items = stored_turn_items.c
        async with self._engine.connect() as conn:
            await self._require(conn, api, turn_id, key_id)
            query = select(items.body).where(items.turn_id == turn_id)
            for parameter, cursor in (("after", after), ("before", before)):
                if cursor is None:
                    continue
                position = await _position(conn, turn_id, parameter, cursor)
                beyond = (parameter == "after") == (order == "asc")
                query = query.where(items.position > position if beyond
                                    else items.position < position)
            ordering = items.position.asc() if order == "asc" else items.position.desc()
            rows = (await conn.execute(query.order_by(ordering).limit(limit + 1))).all()
        page = tuple(orjson.loads(row.body) for row in rows[:limit])
        return ItemPage(page, has_more=len(rows) > limit)

    async def list(
        self, *, api: str | None = None, key_id: int | None = None, limit: int = 100,
        after: str | None = None,
    ) -> builtins.list[StoredTurn]:
        """Live turns for an operator, newest first; `after` continues from a turn id."""
        turns = stored_turns.c
        query = select(stored_turns).where(turns.expires_at > self._clock())
        if api is not None:
            query = query.where(turns.api == api)
        if key_id is not None:
            query = query.where(turns.key_id == key_id)
        if after is not None:
            anchor = select(turns.created_at, turns.id).where(turns.id == after).subquery()
            query = query.where(
                (turns.created_at < select(anchor.c.created_at).scalar_subquery())
                | and_(turns.created_at == select(anchor.c.created_at).scalar_subquery(),
                       turns.id < after)
            )
        query = query.order_by(turns.created_at.desc(), turns.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_turn(row) for row in await conn.execute(query)]

    async def purge(
        self, *, key_id: int | None = None, api: str | None = None,
        created_before: datetime | None = None, turn_id: str | None = None,
    ) -> int:
        """Remove turns (all, or those matching every filter given); returns how many."""
        conditions = []
        if turn_id is not None:
            conditions.append(stored_turns.c.id == turn_id)
        if key_id is not None:
            conditions.append(stored_turns.c.key_id == key_id)
        if api is not None:
            conditions.append(stored_turns.c.api == api)
        if created_before is not None:
            conditions.append(stored_turns.c.created_at < created_before)
        return await self._purge_where(and_(literal(True), *conditions))

    async def purge_expired(self) -> int:
        """The sweep: remove every turn whose retention has run out; returns how many."""
        return await self._purge_where(stored_turns.c.expires_at <= self._clock())

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            query = select(func.count()).select_from(stored_turns)
            return int((await conn.execute(query)).scalar_one())

    async def _purge_where(self, condition: Any) -> int:
        # In batches, so a large purge does not hold one long write transaction.
        removed = 0
        while True:
            async with self._engine.begin() as conn:
                ids = (await conn.execute(
                    select(stored_turns.c.id).where(condition).limit(_PURGE_BATCH)
                )).scalars().all()
                if not ids:
                    return removed
                await conn.execute(delete(stored_turn_items)
                                   .where(stored_turn_items.c.turn_id.in_(ids)))
                await conn.execute(delete(stored_turns).where(stored_turns.c.id.in_(ids)))
            removed += len(ids)

    def _visible(self, api: str, turn_id: str, key_id: int) -> Any:
        turns = stored_turns.c
        return and_(turns.id == turn_id, turns.api == api, turns.key_id == key_id,
                    turns.expires_at > self._clock())

    async def _require(self, conn: AsyncConnection, api: str, turn_id: str, key_id: int) -> None:
        found = (await conn.execute(
            select(stored_turns.c.id).where(self._visible(api, turn_id, key_id))
        )).one_or_none()
        if found is None:
            raise TurnNotFoundError(turn_id)

    async def _chain(
        self, conn: AsyncConnection, api: str, turn_id: str, key_id: int
    ) -> builtins.list[StoredTurn]:
        # One recursive query walks the previous_id links; every step must be visible.
        turns = stored_turns.c
        start = select(stored_turns, literal(0).label("depth")).where(
            self._visible(api, turn_id, key_id)
        ).cte("chain", recursive=True)
        step = select(stored_turns, (start.c.depth + 1).label("depth")).join(
            start, turns.id == start.c.previous_id
        ).where(turns.api == api, turns.key_id == key_id, turns.expires_at > self._clock(),
                start.c.depth < MAX_CHAIN_LENGTH)
        chain = start.union_all(step)
        rows = (await conn.execute(select(chain).order_by(chain.c.depth.desc()))).all()
        if not rows:
            raise TurnNotFoundError(turn_id)
        found = [_turn(row) for row in rows]
        oldest = found[0]
        if oldest.previous_id is not None:
            raise TurnNotFoundError(oldest.previous_id)
        return found

    def _chain_ids(self, api: str, turn_id: str, key_id: int) -> Any:
        """The ids of the chain ending at `turn_id`, as a recursive CTE (visible turns only)."""
        turns = stored_turns.c
        start = select(turns.id, turns.previous_id, literal(0).label("depth")).where(
            self._visible(api, turn_id, key_id)
        ).cte("renewed", recursive=True)
        step = select(turns.id, turns.previous_id, (start.c.depth + 1).label("depth")).join(
            start, turns.id == start.c.previous_id
        ).where(turns.api == api, turns.key_id == key_id, turns.expires_at > self._clock(),
                start.c.depth < MAX_CHAIN_LENGTH)
        return start.union_all(step)

    async def _items_of(
        self, conn: AsyncConnection, turn_ids: builtins.list[str]
    ) -> dict[str, tuple[dict[str, Any], ...]]:
        items = stored_turn_items.c
        grouped: dict[str, builtins.list[dict[str, Any]]] = {}
        for start in range(0, len(turn_ids), _PURGE_BATCH):
            query = (select(items.turn_id, items.body)
                     .where(items.turn_id.in_(turn_ids[start:start + _PURGE_BATCH]))
                     .order_by(items.turn_id, items.position))
            for row in await conn.execute(query):
                grouped.setdefault(row.turn_id, []).append(orjson.loads(row.body))
        return {turn_id: tuple(found) for turn_id, found in grouped.items()}


async def _position(conn: AsyncConnection, turn_id: str, parameter: str, item_id: str) -> int:
    items = stored_turn_items.c
    position = (await conn.execute(
        select(items.position).where(items.turn_id == turn_id, items.item_id == item_id)
    )).scalar_one_or_none()
    if position is None:
        raise UnknownCursorError(parameter, item_id)
    return int(position)


def _turn(row: Row[Any]) -> StoredTurn:
    return StoredTurn(
        id=row.id, api=row.api, key_id=row.key_id, model=row.model, status=row.status,
        body=orjson.loads(row.body), previous_id=row.previous_id,
        created_at=row.created_at, expires_at=row.expires_at,
    )


def _dumps(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document).decode()
