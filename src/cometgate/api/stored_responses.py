"""Stored responses for Responses API callers: what `store` keeps, what `previous_response_id`
rebuilds, and `GET`/`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`.

A response is kept (conversations store, `api` "responses") when the request has `store` on
(OpenAI's default), the gateway stores conversations (`storage.conversations.enabled`) and the
key allows it (`store_conversations`). What is kept: the Response object as the caller got
it, with its reasoning state sealed in `encrypted_content`, and the request's input items.

`previous_response_id` rebuilds the conversation for any upstream: the input items and output
items of every response of the chain, oldest first, then the request's own input. An id that
is unknown, expired, deleted or another key's is OpenAI's 400 `previous_response_not_found`;
the routes answer OpenAI's 404 "Response with id '…' not found." for the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance, client_ip
from cometgate.dialects.openai.caller_fields import invalid_value, unsupported_value
from cometgate.dialects.responses.caller_params import INCLUDABLE
from cometgate.dialects.responses.reasoning_state import shown_item
from cometgate.dialects.responses.reasoning_state import visible as visible
from cometgate.dialects.responses.record import ResponseRecord
from cometgate.errors import InvalidRequest, NotFound
from cometgate.key_access import check_access
from cometgate.storage.conversations import (
    ConversationStore,
    NewTurn,
    StoredTurn,
    TurnNotFoundError,
    UnknownCursorError,
)
from cometgate.storage.keys import KeyRecord

API = "responses"  # the stored turns' `api`
JSON_TYPE = "application/json"
DEFAULT_PAGE = 20
MAX_PAGE = 100
_LIST_PARAMETERS = frozenset({"after", "before", "limit", "order", "include", "include[]"})


@dataclass(frozen=True, slots=True)
class StoredResponses:
    """The Responses routes' keeper, and the routes that read stored responses back."""

    entrance: Entrance
    store: ConversationStore | None  # None: the gateway stores no conversations

    def keeps(self, key: KeyRecord) -> bool:
        return self.store is not None and key.store_conversations

    async def keep(self, key: KeyRecord, record: ResponseRecord) -> None:
        if self.store is None or not key.store_conversations:
            return
        response = record.response
        previous = record.request.get("previous_response_id")
        await self.store.put(NewTurn(
            id=str(response["id"]), api=API, key_id=key.id, model=str(response["model"]),
            status=str(response["status"]), body=response, items=record.input_items,
            previous_id=previous if isinstance(previous, str) else None,
        ))

    async def settle(self, key: KeyRecord, body: Mapping[str, Any], *,
                     only_from: Sequence[str]) -> bool:
        """Move a stored response to `body` (a background response's next state), only while
        its status is one of `only_from`; False when it is not (or is gone)."""
        if self.store is None:
            return False
        return await self.store.replace_body(API, str(body["id"]), key.id,
                                             status=str(body["status"]), body=body,
                                             only_from=only_from)

    async def history(self, key: KeyRecord, document: Mapping[str, Any]
                      ) -> list[Mapping[str, Any]]:
        """The items of the conversation `previous_response_id` names (none without one)."""
        previous = document.get("previous_response_id")
        if not isinstance(previous, str):
            return []
        if self.store is None or not key.store_conversations:
            raise previous_not_found(previous)
        try:
            chain = await self.store.conversation(API, previous, key.id)
        except TurnNotFoundError as exc:
            raise previous_not_found(exc.turn_id) from None
        return [item for link in chain
                for item in (*link.items, *(link.turn.body.get("output") or ()))]

    def routes(self) -> list[BaseRoute]:
        return [
            route
            for prefix in ("/v1", "")
            for route in (
                Route(f"{prefix}/responses/{{response_id}}", self.retrieve,
                      methods=["GET", "DELETE"]),
                Route(f"{prefix}/responses/{{response_id}}/input_items", self.input_items,
                      methods=["GET"]),
            )
        ]

    async def retrieve(self, request: Request) -> Response:
        """GET: the stored Response; DELETE: OpenAI's deleted object."""
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        response_id = request.path_params["response_id"]
        store, turn = await self.stored(request, key, response_id)
        if request.method == "DELETE":
            try:
                await store.delete(API, response_id, key.id)
            except TurnNotFoundError:  # deleted by a concurrent request
                raise response_not_found(response_id) from None
            return _json({"id": response_id, "object": "response.deleted", "deleted": True})
        _check_parameters(request, frozenset({"include", "include[]"}))
        return _json(visible(turn.body, _include(request)))

    async def input_items(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        response_id = request.path_params["response_id"]
        store, _ = await self.stored(request, key, response_id)
        _check_parameters(request, _LIST_PARAMETERS)
        params = request.query_params
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise unsupported_value("order", order, ("asc", "desc"))
        try:
            page = await store.items_page(
                API, response_id, key.id, limit=_limit(params.get("limit")),
                order="asc" if order == "asc" else "desc",
                after=params.get("after"), before=params.get("before"),
            )
        except TurnNotFoundError:
            raise response_not_found(response_id) from None
        except UnknownCursorError as exc:
            raise invalid_value(exc.parameter, f"no input item of this response has id "
                                               f"'{exc.item_id}'.") from None
        data = [shown_item(item, _include(request)) for item in page.items]
        return _json({
            "object": "list", "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        })

    async def stored(self, request: Request, key: KeyRecord, response_id: str
                     ) -> tuple[ConversationStore, StoredTurn]:
        """The store and the response, once the key may see it: its own, live, and within
        the key's access rules (expiry, addresses, models) as for the call that made it."""
        if self.store is None or not key.store_conversations:
            raise response_not_found(response_id)
        try:
            turn = await self.store.get(API, response_id, key.id)
        except TurnNotFoundError:
            raise response_not_found(response_id) from None
        check_access(key, turn.model, client_ip(request), datetime.now(UTC))
        return self.store, turn


def with_history(document: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
                 ) -> Mapping[str, Any]:
    """`document` with the rebuilt conversation before its own input."""
    if not history:
        return document
    own = document.get("input")
    if isinstance(own, str):
        own = [{"type": "message", "role": "user", "content": own}]
    return {**document, "input": [*history, *(own if isinstance(own, list) else ())]}


def previous_not_found(response_id: str) -> InvalidRequest:
    message = f"Previous response with id '{response_id}' not found."
    return InvalidRequest(message, violations={"previous_response_id": message},
                          code="previous_response_not_found")


def response_not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.")


def _include(request: Request) -> list[str]:
    params = request.query_params
    found = [*params.getlist("include"), *params.getlist("include[]")]
    for index, value in enumerate(found):
        if value not in INCLUDABLE:
            raise unsupported_value(f"include[{index}]", value, INCLUDABLE)
    return found


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()):
        raise invalid_value("limit", f"expected an integer, but got '{text}' instead.")
    limit = int(text)
    if not 1 <= limit <= MAX_PAGE:
        raise invalid_value("limit", f"expected an integer between 1 and {MAX_PAGE}, but got "
                                     f"{limit} instead.")
    return limit


def _check_parameters(request: Request, known: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidRequest(f"Unknown parameter: '{unknown[0]}'.",
                             violations={unknown[0]: "unknown parameter"})


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document), media_type=JSON_TYPE)
