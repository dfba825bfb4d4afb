"""Background Responses (`background: true`) and `POST /v1/responses/{id}/cancel`.

A background request is admitted, checked and stored at once, `queued`; the caller gets that
Response object straight away, and the generation runs in a task of this gateway process,
which stores the final Response (completed, incomplete or failed) for
`GET /v1/responses/{id}` to poll.

Invariants:
- A stored background response moves queued → in_progress → completed/incomplete/failed, or
  to cancelled. Every move is conditional on the stored status still being unfinished, so a
  cancel and a finish that race end in exactly one of them, whichever came first.
- Usage is recorded once per background request, on the ticket admitted with the request:
  settled when its task ends; a cancelled one as 499 "cancelled" (a whole generation reports
  no usage before it ends, so nothing more is known of it).
- Tasks live in this process only. A background response in flight when the gateway stops
  cannot be finished by anyone, so at start every stored response still unfinished is marked
  failed, saying the gateway restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from cometgate.api.caller_dialect import settle_dialect
from cometgate.api.entrance import Entrance
from cometgate.api.stored_responses import API, StoredResponses, visible
from cometgate.dialects.responses.caller_errors import error_event_fields, response_error
from cometgate.dialects.responses.caller_response import Frame, encode_response
from cometgate.dialects.responses.record import response_record
from cometgate.errors import GatewayError, InternalError, InvalidRequest
from cometgate.metering import CANCELLED, Served, Ticket, served_failure
from cometgate.pipeline import Call
from cometgate.storage.keys import KeyRecord

logger = logging.getLogger(__name__)

UNFINISHED = ("queued", "in_progress")
RESTARTED = "The gateway restarted before this background response finished."
JSON_TYPE = "application/json"


@dataclass(slots=True)
class BackgroundResponses:
    entrance: Entrance
    stored: StoredResponses
    # Each running task with the ticket it settles: a task cancelled before its first step
    # never runs its own handler, so whoever cancels it settles the ticket too (the meter
    # settles a ticket once, whoever comes first).
    _tasks: dict[str, tuple[asyncio.Task[None], Ticket]] = field(default_factory=dict)

    def routes(self) -> list[BaseRoute]:
        return [Route(f"{prefix}/responses/{{response_id}}/cancel", self.cancel,
                      methods=["POST"]) for prefix in ("/v1", "")]

    def runs(self, key: KeyRecord) -> bool:
        """Whether a background request of `key` can be answered: it must be stored."""
        return self.stored.keeps(key)

    async def begin(self, key: KeyRecord, document: Mapping[str, Any], call: Call,
                    ticket: Ticket, frame: Frame) -> dict[str, Any]:
        """Store the request's Response as queued and start its generation; the queued
        Response. `call` is decoded already, so a bad request was refused before this."""
        queued = frame.body("queued", [], None)
        await self.stored.keep(key, response_record(document, queued))
        task = asyncio.create_task(self._run(key, call, ticket, frame),
                                   name=f"background-{frame.id}")
        self._tasks[frame.id] = task, ticket
        task.add_done_callback(lambda _: self._tasks.pop(frame.id, None))
        return queued

    async def cancel(self, request: Request) -> Response:
        settle_dialect(request, "openai")
        key = await self.entrance.caller(request)
        response_id = request.path_params["response_id"]
        _, turn = await self.stored.stored(request, key, response_id)
        body = turn.body
        if body.get("background") is not True:
            raise InvalidRequest("Cannot cancel a synchronous response.")
        if body.get("status") != "cancelled":
            cancelled = {**body, "status": "cancelled"}
            if not await self.stored.settle(key, cancelled, only_from=UNFINISHED):
                # It ended first (here or on another replica): say how, as it is now.
                _, turn = await self.stored.stored(request, key, response_id)
                if turn.body.get("status") != "cancelled":
                    raise _finished(str(turn.body.get("status")))
                cancelled = dict(turn.body)
            body = cancelled
            running = self._tasks.get(response_id)
            if running is not None:
                running[0].cancel()
                await self._cancelled(running[1])
        return Response(orjson.dumps(visible(body, ())), media_type=JSON_TYPE)

    async def recover(self) -> int:
        """At start: mark every stored response still unfinished failed; how many."""
        store = self.stored.store
        if store is None:
            return 0
        failed = 0
        for turn in await store.with_status(API, UNFINISHED):
            body = {**turn.body, "status": "failed",
                    "error": {"code": "server_error", "message": RESTARTED}}
            failed += await store.replace_body(API, turn.id, turn.key_id, status="failed",
                                               body=body, only_from=UNFINISHED)
        if failed:
            logger.warning("marked %d unfinished background response(s) failed", failed)
        return failed

    async def settled(self) -> None:
        """Wait until every background response started so far has ended (for tests)."""
        await asyncio.gather(*(task for task, _ in self._tasks.values()),
                             return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is still running; its stored state is left for `recover`."""
        running = list(self._tasks.values())
        for task, _ in running:
            task.cancel()
        for task, ticket in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._cancelled(ticket)

    async def _run(self, key: KeyRecord, call: Call, ticket: Ticket, frame: Frame) -> None:
        try:
            await self._generate(key, call, ticket, frame)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store failed: nobody awaits this task to hear it
            logger.exception("background response %s could not be stored", frame.id)

    async def _cancelled(self, ticket: Ticket) -> None:
        await self.entrance.meter.finish(ticket, Served(499, failure_class=CANCELLED))

    async def _generate(self, key: KeyRecord, call: Call, ticket: Ticket, frame: Frame
                        ) -> None:
        meter = self.entrance.meter
        try:
            await self.stored.settle(key, frame.body("in_progress", [], None),
                                     only_from=("queued",))
            outcome = await self.entrance.gateway.generate(call)
        except asyncio.CancelledError:
            await self._cancelled(ticket)
            raise
        except Exception as exc:
            error = exc if isinstance(exc, GatewayError) else InternalError(
                "The gateway failed while generating this response.")
            await meter.finish(ticket, served_failure(error))
            message = error_event_fields(error)["message"]
            failed = frame.body("failed", [], None, error=response_error(error, message))
            await self.stored.settle(key, failed, only_from=UNFINISHED)
            return
        await self.entrance.finish(ticket, outcome.usage, outcome.served_by)
        assert outcome.response is not None  # a background call is never forwarded
        await self.stored.settle(key, encode_response(outcome.response, frame),
                                 only_from=UNFINISHED)


def _finished(status: str) -> InvalidRequest:
    article = "an" if status[:1] in tuple("aeiou") else "a"
    return InvalidRequest(f"Cannot cancel {article} {status} response.")
