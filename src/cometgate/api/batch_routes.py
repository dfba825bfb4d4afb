"""Gemini's Batch API as google-genai and @google/genai call it, on every model:

    POST   {v}/models/{m}:batchGenerateContent   create (inline requests, or a JSONL file)
    GET    {v}/batches/{id}                      the batch (a long-running Operation)
    GET    {v}/batches                           the key's batches, newest first, paged
    POST   {v}/batches/{id}:cancel               stop what has not started
    DELETE {v}/batches/{id}

A batch is the key's alone: another key's batch is "not found", as a missing one. Creating
one checks the key's access rules and reserves the worst-case cost of all its requests
against the key's budget, counting what its other unfinished batches still hold; a batch the
budget cannot cover is refused whole. What it holds is then counted by every admission of the
key (limits/batch_holds.py). Its requests then run in the background
(api/batch_runner.py), each admitted and recorded like a live call.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.batch_files import BatchFiles
from cometgate.api.batch_runner import BatchRunner
from cometgate.api.caller_dialect import sniffed_dialect
from cometgate.api.entrance import Entrance, client_ip, worst_output
from cometgate.api.upstream_batches import UpstreamBatches
from cometgate.canonical import ModelInfo
from cometgate.dialects.gemini.batches import (
    BatchInput,
    BatchView,
    decode_batch_request,
    encode_batch,
    encode_batch_list,
)
from cometgate.dialects.gemini.estimate import admission
from cometgate.errors import BudgetExhausted, InvalidRequest, NotFound
from cometgate.limits.batch_holds import BatchHolds
from cometgate.settings import BatchSettings
from cometgate.storage.batches import (
    ITEM_FAILED,
    ITEM_OPEN,
    ITEM_SUCCEEDED,
    PENDING,
    Batch,
    BatchStore,
    ItemResult,
    NewItem,
)
from cometgate.storage.keys import KeyRecord
from cometgate.storage.money import money_text

Handler = Callable[[Request], Awaitable[Response]]
JSON_TYPE = "application/json; charset=UTF-8"
VERSIONS = ("/v1beta", "/v1", "")
NOT_FOUND = "Requested entity was not found."
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# What an unstarted request of a cancelled or expired batch answers (google.rpc.Status).
UNRUN: dict[str, dict[str, Any]] = {
    "cancelled": {"code": 1, "message": "The batch was cancelled before this request ran."},
    "expired": {"code": 4, "message": "The batch expired before this request ran."},
}


@dataclass(frozen=True, slots=True)
class BatchApi:
    entrance: Entrance
    store: BatchStore
    runner: BatchRunner
    settings: BatchSettings
    files: BatchFiles  # JSONL input and result files, through the Files API's store
    holds: BatchHolds  # what batches hold of their keys' budgets, for admission
    # Batches of models whose provider says `batch: upstream` go to its own batch API.
    upstream: UpstreamBatches | None = None

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for prefix in VERSIONS:
            routes += [
                Route(f"{prefix}/models/{{name:path}}:batchGenerateContent", self.create,
                      methods=["POST"]),
                Route(f"{prefix}/batches", _google_only(self.list_batches), methods=["GET"]),
                Route(f"{prefix}/batches/{{batch_id}}:cancel", _google_only(self.cancel),
                      methods=["POST"]),
                Route(f"{prefix}/batches/{{batch_id}}", _google_only(self.get),
                      methods=["GET"]),
                Route(f"{prefix}/batches/{{batch_id}}", _google_only(self.delete),
                      methods=["DELETE"]),
            ]
        return routes

    async def create(self, request: Request) -> Response:
        entrance = self.entrance
        key = await entrance.caller(request)
        info = self._model(request, request.path_params["name"])
        entrance.check_access(request, key, info)
        parsed = decode_batch_request(await entrance.body(request), self.settings.max_requests)
        if parsed.file_name is not None:
            parsed = replace(parsed, items=await self.files.requests(
                key.id, parsed.file_name, self.settings.max_requests))
        items = self._priced(info, parsed)
        upstream = self.upstream.route(info.id) if self.upstream is not None else None
        if upstream is not None and self.upstream is not None:
            self.upstream.check(upstream, info.id, items, key)
        worst = sum((i.reserved_usd for i in items), Decimal(0))
        await self._check_budget(key, worst, len(items))
        now = datetime.now(UTC)
        batch = Batch(
            id=secrets.token_hex(16), key_id=key.id, model=info.id,
            display_name=parsed.display_name, state=PENDING, input_file=parsed.file_name,
            output_file=None, client_ip=client_ip(request), request_count=len(items),
            created_at=now, updated_at=now, ended_at=None,
            expires_at=now + timedelta(hours=self.settings.expire_hours),
        )
        if upstream is not None and self.upstream is not None:
            await self.upstream.create(batch, items, upstream)
        else:
            await self.store.create(batch, items)
        self.holds.hold(batch.id, key.id, worst)
        self.runner.wake()
        return _json(encode_batch(await self._view(batch)))

    async def get(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        return _json(encode_batch(await self._view(await self._batch(request, key))))

    async def list_batches(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        size = _page_size(request)
        offset = _page_token(request)
        found, more = await self.store.page(key.id, offset, size)
        views = [await self._view(batch) for batch in found]
        return _json(encode_batch_list(views, str(offset + size) if more else None))

    async def cancel(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        batch = await self._batch(request, key)
        cancelled = await self.store.cancel(key.id, batch.id, datetime.now(UTC))
        self.holds.release(batch.id)  # nothing of it is pending any more
        if cancelled and self.upstream is not None:
            await self.upstream.stop(batch.id, "cancelled")  # its upstream job, if any
        if not cancelled:
            current = await self._batch(request, key)
            if current.state != "BATCH_STATE_CANCELLED":
                raise InvalidRequest(f"batches/{batch.id} has already ended ({current.state}); "
                                     "only a pending or running batch can be cancelled.")
        return _json({})

    async def delete(self, request: Request) -> Response:
        key = await self.entrance.caller(request)
        batch_id = _batch_id(request)
        if not await self.store.delete(key.id, batch_id):
            raise NotFound(NOT_FOUND)
        self.holds.release(batch_id)
        return _json({})

    def _model(self, request: Request, name: str) -> ModelInfo:
        info = self.entrance.model(name)
        if info is None or "generateContent" not in info.generation_methods:
            version = request.url.path.split("/")[1] if request.url.path.startswith("/v1") else ""
            raise NotFound(
                f"models/{name.removeprefix('models/')} is not found for API version "
                f"{version or 'v1beta'}, or is not supported for batchGenerateContent. Call "
                "ListModels to see the list of available models and their supported methods."
            )
        return info

    def _priced(self, info: ModelInfo, parsed: BatchInput) -> list[NewItem]:
        items: list[NewItem] = []
        for item in parsed.items:
            estimate, billable = admission(orjson.dumps(item.request))
            worst = self.entrance.meter.worst_case(
                info.id, estimate[0], worst_output(info, estimate), billable)
            items.append(NewItem(item.request, item.metadata, worst))
        return items

    async def _check_budget(self, key: KeyRecord, worst: Decimal, count: int) -> None:
        """The batch's worst case must fit what the key's budget has left once its requests
        in flight and its other unfinished batches are counted."""
        meter = self.entrance.meter
        if not meter.enabled:
            return
        state = await meter.state(key)
        left = [r for r in (state.remaining_budget_total, state.remaining_budget_period)
                if r is not None]
        if not left:
            return
        room = max(Decimal(0), min(left) - await self.store.outstanding(key.id))
        if worst > room:
            raise BudgetExhausted(
                f"Budget exhausted: the {count} requests of this batch may cost up to "
                f"{money_text(worst)} USD, more than the {money_text(room)} USD this API "
                "key has left after its requests in flight and its unfinished batches.")

    async def _batch(self, request: Request, key: KeyRecord) -> Batch:
        batch = await self.store.get(key.id, _batch_id(request))
        if batch is None:
            raise NotFound(NOT_FOUND)
        return batch

    async def _view(self, batch: Batch) -> BatchView:
        counts = await self.store.counts(batch.id)
        finished = batch.state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
        results = await self.store.results(batch.id) if finished else None
        output_file = batch.output_file
        if results is not None and batch.input_file is not None:
            output_file = await self.files.output_file(batch, results, UNRUN)
        return BatchView(
            id=batch.id, model=batch.model, display_name=batch.display_name,
            state=batch.state, created_at=batch.created_at, updated_at=batch.updated_at,
            ended_at=batch.ended_at, request_count=batch.request_count,
            succeeded=counts.get(ITEM_SUCCEEDED, 0), failed=counts.get(ITEM_FAILED, 0),
            pending=sum(counts.get(s, 0) for s in ITEM_OPEN),
            input_file=batch.input_file, output_file=output_file,
            inlined=None if results is None else [_inlined(r) for r in results],
        )


def _google_only(handler: Handler) -> Handler:
    """OpenAI has a Batch API at /v1/batches too: a caller speaking OpenAI (a Bearer key
    alone) hears OpenAI's own 404 there, as it did before Gemini's batches were served."""
    async def answer(request: Request) -> Response:
        if request.url.path.startswith("/v1/") and sniffed_dialect(request) == "openai":
            raise HTTPException(404)  # rendered as an unknown route is, in OpenAI's words
        return await handler(request)

    return answer


def _inlined(item: ItemResult) -> dict[str, object]:
    entry: dict[str, object] = dict(item.result) if item.result is not None else {
        "error": UNRUN.get(item.state, UNRUN["cancelled"])}
    if item.metadata is not None:
        entry["metadata"] = item.metadata
    return entry


def _batch_id(request: Request) -> str:
    return str(request.path_params["batch_id"])


def _page_size(request: Request) -> int:
    text = request.query_params.get("pageSize")
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise InvalidRequest(f"Invalid value at 'page_size' (TYPE_INT32), \"{text}\"") from None
    if size < 0:
        raise InvalidRequest("page_size must not be negative.")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _page_token(request: Request) -> int:
    token = request.query_params.get("pageToken")
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidRequest("The page token is not valid.")
    return int(token)


def _json(document: object) -> Response:
    return Response(orjson.dumps(document), media_type=JSON_TYPE)
