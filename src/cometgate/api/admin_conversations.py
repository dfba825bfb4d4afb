"""The operator's view of stored conversations under /admin/conversations: list them, purge
them (by key, by API, by age, one by id, or all), without reading what callers wrote.

A listing shows what identifies a stored turn (id, API, key, model, status, times), never its
content: the prompts are the callers' personal data, and an operator who must remove them
needs to find them, not read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cometgate.api.admin_requests import dump_json, invalid, parse_time
from cometgate.storage.conversations import ConversationStore, StoredTurn

JSON_TYPE = "application/json"
MAX_LIST = 1000
_LIST_PARAMETERS = frozenset({"key_id", "api", "limit", "after"})
_PURGE_PARAMETERS = frozenset({"key_id", "api", "created_before", "all"})


@dataclass(frozen=True, slots=True)
class ConversationAdmin:
    store: ConversationStore | None  # None: the gateway stores no conversations

    async def list_turns(self, request: Request) -> Response:
        params = request.query_params
        _refuse_unknown(params, _LIST_PARAMETERS)
        if self.store is None:
            return _json({"turns": [], "storage": "off"})
        turns = await self.store.list(
            api=params.get("api"), key_id=_key_id(params), limit=_limit(params.get("limit")),
            after=params.get("after"),
        )
        return _json({"turns": [turn_document(turn) for turn in turns], "storage": "on"})

    async def purge(self, request: Request) -> Response:
        params = request.query_params
        _refuse_unknown(params, _PURGE_PARAMETERS)
        before = params.get("created_before")
        filters: dict[str, Any] = {
            "key_id": _key_id(params), "api": params.get("api"),
            "created_before": None if before is None else parse_time("created_before", before),
        }
        if all(value is None for value in filters.values()) and params.get("all") != "true":
            raise invalid("all", "Name what to purge (key_id, api, created_before), or purge "
                                 "every stored conversation with all=true.")
        purged = 0 if self.store is None else await self.store.purge(**filters)
        return _json({"purged": purged})

    async def purge_one(self, request: Request) -> Response:
        turn_id = request.path_params["turn_id"]
        purged = 0 if self.store is None else await self.store.purge(turn_id=turn_id)
        return _json({"purged": purged})


def turn_document(turn: StoredTurn) -> dict[str, Any]:
    return {"id": turn.id, "api": turn.api, "key_id": turn.key_id, "model": turn.model,
            "status": turn.status, "previous_id": turn.previous_id,
            "created_at": turn.created_at, "expires_at": turn.expires_at}


def _key_id(params: Mapping[str, str]) -> int | None:
    text = params.get("key_id")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise invalid("key_id", "key_id must be a key's numeric id")
    return int(text)


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIST:
        raise invalid("limit", f"limit must be a whole number from 1 to {MAX_LIST}")
    return int(text)


def _refuse_unknown(params: Mapping[str, str], known: frozenset[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise invalid(unknown[0], f"Unknown query parameter {unknown[0]!r}")


def _json(document: Any) -> Response:
    return Response(dump_json(document), media_type=JSON_TYPE)
