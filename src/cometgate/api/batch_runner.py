"""The gateway's own batch workers: each replica claims batch requests from the database and
runs every one through the same pipeline as a live `generateContent` — the creator's key,
its access rules, limits and budget, routing and failover, one usage record (marked with the
batch) — storing its response or error for the batch's results.

Invariants:
- A request is run only while this replica holds its claim (storage/batches.py), renewed
  every third of the lease; if the replica dies, its claims lapse and any replica (this one
  restarted, or another) runs them again. A result is stored only by the claim's holder, so
  none is answered twice; a request refused by a rate limit goes back unrun and its key waits
  out the limit's retry time before its next request is claimed.
- At most `concurrency` requests per provider run at once in this replica (the provider of
  the model's first candidate, where its requests go unless failover moves them); none is
  claimed for a supervised provider that is not ready yet (a local model still loading).
- Stopping cancels what is running and gives it back unrun, for the next claimer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cometgate.api.batch_keys import batch_key
from cometgate.api.entrance import Entrance
from cometgate.dialects.gemini.batches import item_error
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.estimate import admission
from cometgate.errors import (
    GatewayError,
    InternalError,
    NotFound,
    RateLimited,
)
from cometgate.limits.batch_holds import BatchHolds
from cometgate.metering import CANCELLED, Served, Ticket, served_failure
from cometgate.pipeline import Call
from cometgate.providers.base import RawCall
from cometgate.settings import BatchSettings
from cometgate.storage.batches import BatchStore, Claimed
from cometgate.storage.keys import KeyRecord, KeyRepository
from cometgate.storage.periodic import woken_rounds

log = logging.getLogger("cometgate.batches")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BatchRunner:
    def __init__(
        self,
        store: BatchStore,
        entrance: Entrance,
        keys: KeyRepository,
        settings: BatchSettings,
        provider_of: Mapping[str, str],
        holds: BatchHolds,
        *,
        ready: Callable[[str], bool] = lambda provider: True,
        clock: Clock = utc_now,
    ) -> None:
        self._store, self._entrance, self._keys = store, entrance, keys
        self._holds = holds
        self._settings = settings
        self._provider_of = provider_of  # model id → the provider its requests go to
        self._ready = ready  # a supervised provider (the local model) may still be starting
        self._clock = clock
        self._lease = timedelta(seconds=settings.lease_seconds)
        self.owner = uuid.uuid4().hex  # this replica's name on its claims
        self._running: dict[tuple[str, int], tuple[asyncio.Task[None], str]] = {}
        self._waiting_keys: dict[int, float] = {}  # key id → monotonic time it may go again
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, *, claims: bool = True) -> None:
        """`claims`: whether this process runs batch requests (one worker of `serve --workers
        N` does, so that `concurrency` stays what it says for the whole server)."""
        if self._tasks:
            return
        # Every replica keeps the batches' budget holds current, workers or not.
        self._tasks = [asyncio.create_task(self._refreshing(), name="batch-holds")]
        if self._settings.enabled and claims:
            self._tasks += [asyncio.create_task(self._claiming(), name="batch-claims"),
                            asyncio.create_task(self._renewing(), name="batch-leases")]

    def wake(self) -> None:
        """A batch was created: look for work now rather than at the next poll."""
        self._wake.set()

    async def claim_once(self) -> None:
        """One look for requests to claim, as each poll makes (for tests)."""
        await self._claim_some()

    async def idle(self) -> None:
        """Wait until nothing this replica claimed is still running (for tests)."""
        while self._running:
            await asyncio.gather(*(task for task, _ in list(self._running.values())),
                                 return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        running = [task for task, _ in self._running.values()]
        for task in running:
            task.cancel()
        for task in [*self._tasks, *running]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _claiming(self) -> None:
        await woken_rounds(self._claim_some, self._wake, self._settings.poll_seconds,
                           "looking for batch requests to run")

    async def _refreshing(self) -> None:
        while True:
            try:
                self._holds.replace_all(await self._store.held())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading what batches hold of their budgets failed")
            await asyncio.sleep(self._settings.poll_seconds)

    async def _renewing(self) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            held = list(self._running)
            try:
                await self._store.renew(self.owner, held, self._clock() + self._lease)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing batch request leases failed")

    async def _claim_some(self) -> None:
        now = self._clock()
        await self._store.expire(now)
        limit = self._settings.concurrency * 4 + len(self._running)
        moment = time.monotonic()
        waiting = [key for key, until in self._waiting_keys.items() if until > moment]
        busy = [model for model, provider in self._provider_of.items() if self._full(provider)]
        found = await self._store.claimable(now, limit, skip_models=busy, skip_keys=waiting)
        for item in found:
            provider = self._provider_of.get(item.model, item.model)
            if (item.batch_id, item.position) in self._running or self._full(provider):
                continue
            if self._waiting_keys.get(item.key_id, 0.0) > time.monotonic():
                continue
            claimed = await self._store.claim(item, self.owner, now + self._lease, now)
            if claimed is not None:
                self._begin(claimed, provider)

    def _full(self, provider: str) -> bool:
        """No room for another request of this provider now (or it cannot answer yet)."""
        if not self._ready(provider):
            return True
        limit = self._settings.provider_concurrency.get(provider, self._settings.concurrency)
        return sum(1 for _, p in self._running.values() if p == provider) >= limit

    def _begin(self, claimed: Claimed, provider: str) -> None:
        ident = (claimed.batch_id, claimed.position)
        task = asyncio.create_task(self._run(claimed), name=f"batch-{claimed.batch_id}")
        self._running[ident] = task, provider

        def ended(_: asyncio.Task[None]) -> None:
            self._running.pop(ident, None)
            self._wake.set()  # a slot is free

        task.add_done_callback(ended)

    async def _run(self, claimed: Claimed) -> None:
        try:
            await self._answer(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:  # the store failed: the lease lapses and another worker retries
            log.exception("batch request %s/%d failed", claimed.batch_id, claimed.position)

    async def _answer(self, claimed: Claimed) -> None:
        try:
            key = await batch_key(self._keys, claimed.key_id)
            ticket = await self._admit(claimed, key)
        except RateLimited as exc:
            self._waiting_keys[claimed.key_id] = time.monotonic() + (exc.retry_after or 1.0)
            await self._give_back(claimed)
            return
        except GatewayError as exc:
            await self._failed(claimed, exc)
            return
        try:
            result = await self._generate(claimed, key, ticket)
        except asyncio.CancelledError:
            await self._entrance.meter.finish(ticket, Served(499, failure_class=CANCELLED))
            await asyncio.shield(self._give_back(claimed))
            raise
        except Exception as exc:
            error = exc if isinstance(exc, GatewayError) else InternalError(
                "The gateway failed while generating this response.")
            await self._entrance.meter.finish(ticket, served_failure(error))
            await self._failed(claimed, error)
            return
        await self._store.finish(self.owner, claimed.batch_id, claimed.position,
                                 succeeded=True, result={"response": result},
                                 now=self._clock())

    async def _admit(self, claimed: Claimed, key: KeyRecord) -> Ticket:
        info = self._entrance.model_for(key, claimed.model)
        if info is None:
            raise NotFound(f"models/{claimed.model} is not found.")
        estimate, billable = admission(orjson.dumps(claimed.request))
        return await self._entrance.admit_from(
            claimed.client_ip, uuid.uuid4().hex, key, info, estimate=estimate,
            dialect="gemini", stream=False, billable=billable, batch_id=claimed.batch_id)

    async def _generate(self, claimed: Claimed, key: KeyRecord, ticket: Ticket
                        ) -> dict[str, Any]:
        body = orjson.dumps(claimed.request)
        model = claimed.model
        call = Call(model, dialect="gemini",
                    decode=lambda: decode_generate_request(body, model),
                    raw=RawCall(body=body, version="v1beta", method="generateContent"),
                    translation=key.translation)
        outcome = await self._entrance.gateway.generate(call)
        await self._entrance.finish(ticket, outcome.usage, outcome.served_by)
        if outcome.raw is not None:
            document: dict[str, Any] = orjson.loads(outcome.raw.body)
            return document
        assert outcome.response is not None
        translated: dict[str, Any] = orjson.loads(encode_response(outcome.response))
        return translated

    async def _failed(self, claimed: Claimed, error: GatewayError) -> None:
        await self._store.finish(self.owner, claimed.batch_id, claimed.position,
                                 succeeded=False, result={"error": item_error(error)},
                                 now=self._clock())

    async def _give_back(self, claimed: Claimed) -> None:
        await self._store.release(self.owner, claimed.batch_id, claimed.position)

