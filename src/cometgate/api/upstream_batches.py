"""Batches handed whole to an upstream's own batch API, where the operator chose it (a
provider's `batch: upstream`): one upstream job per batch, submitted, polled every
`upstream_poll_seconds`, and settled when it ends — each answer stored for the caller in
input order, each recorded with its batch id at the batch price.

Invariants:
- A job is worked on by the replica holding its lease (storage/batch_upstream_jobs.py),
  renewed while it works; its upstream id is stored as soon as the upstream gave it, so a
  restart (or another replica) polls the same job and never submits it again.
- A submission the upstream refuses for a transient reason (5xx, 429, no connection) falls
  back: the batch's requests go to the gateway's own workers, as any batch's. Any other
  refusal fails the batch, every request answering with that error.
- Cancelling (or the batch's expiry) cancels the upstream job; the batch ends CANCELLED (or
  EXPIRED) with the answers the upstream had finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from cometgate.api.batch_keys import batch_key, batch_key_or_none
from cometgate.api.entrance import Entrance
from cometgate.api.upstream_batch_requests import (
    Entry,
    UpstreamRoute,
    settled,
    upstream_entry,
)
from cometgate.dialects.batch_jobs import (
    JOB_CANCELLED,
    JOB_EXPIRED,
    JOB_FAILED,
    JobState,
    Outcome,
)
from cometgate.dialects.gemini.batches import item_error
from cometgate.errors import FailureClass, GatewayError, UpstreamError
from cometgate.metering import Served
from cometgate.providers.batch_apis import UpstreamBatchApi
from cometgate.settings import BatchSettings
from cometgate.storage.batch_upstream_jobs import (
    JobItem,
    SettledItem,
    UpstreamJob,
    UpstreamJobStore,
)
from cometgate.storage.batches import (
    CANCELLED,
    EXPIRED,
    FAILED,
    ITEM_CANCELLED,
    ITEM_EXPIRED,
    ITEM_FAILED,
    Batch,
    NewItem,
)
from cometgate.storage.keys import KeyRecord, KeyRepository
from cometgate.storage.periodic import woken_rounds

log = logging.getLogger("cometgate.batches")
Clock = Callable[[], datetime]
FALLS_BACK = (FailureClass.TRANSIENT, FailureClass.RATE_LIMITED)
DUE_AT_ONCE = 16  # jobs looked at per poll
STOP_REASONS = {"cancelled": (ITEM_CANCELLED, CANCELLED), "expired": (ITEM_EXPIRED, EXPIRED)}


def utc_now() -> datetime:
    return datetime.now(UTC)


def batch_request_id(batch_id: str, position: int) -> str:
    """The request id of a batch request's usage record: the same each time its job is
    settled, so a second settling cannot record it twice (32 hex digits, as every id)."""
    return hashlib.sha256(f"{batch_id}/{position}".encode()).hexdigest()[:32]


class UpstreamBatches:
    def __init__(self, jobs: UpstreamJobStore, entrance: Entrance, keys: KeyRepository,
                 settings: BatchSettings, apis: Mapping[str, UpstreamBatchApi],
                 *, wake_workers: Callable[[], None], clock: Clock = utc_now) -> None:
        self._jobs, self._entrance, self._keys = jobs, entrance, keys
        self._settings = settings
        self._apis = apis  # provider name → its batch API, for providers with batch: upstream
        self._wake_workers = wake_workers  # a fallen-back batch is theirs now
        self._clock = clock
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._interval = timedelta(seconds=settings.upstream_poll_seconds)
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def route(self, model: str) -> UpstreamRoute | None:
        """Where the model's batches go upstream; None: the gateway's workers run them."""
        found = self._entrance.gateway.route(model)
        if found is None or not found.candidates or not self._apis:
            return None
        first = min(found.candidates, key=lambda c: c.priority)
        api = self._apis.get(first.provider_name)
        if api is None:
            return None
        return UpstreamRoute(first.provider_name, first.upstream_model, api, first.provider)

    def check(self, route: UpstreamRoute, model: str, items: Sequence[NewItem],
              key: KeyRecord) -> None:
        """Refuse now any request the upstream's batch cannot take."""
        for position, item in enumerate(items):
            upstream_entry(self._entrance.gateway, route, model, position, item.request,
                           key.translation)

    async def create(self, batch: Batch, items: Sequence[NewItem], route: UpstreamRoute
                     ) -> None:
        await self._jobs.create(batch, items, provider=route.provider, kind=route.api.kind,
                                upstream_model=route.upstream_model)
        self._wake.set()

    async def stop(self, batch_id: str, reason: str) -> None:
        """Cancel the batch's upstream job, if it has one still open."""
        if await self._jobs.stop(batch_id, reason, self._clock()):
            self._wake.set()

    def start(self) -> None:
        if self._task is None and self._apis:
            self._task = asyncio.create_task(self._polling(), name="batch-upstream-jobs")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for api in self._apis.values():
            await api.aclose()

    async def poll_once(self) -> None:
        """Work on every job that is due now (for tests; the poll loop calls it)."""
        now = self._clock()
        for batch_id in await self._jobs.due(now, DUE_AT_ONCE):
            job = await self._jobs.claim(batch_id, self.owner, now + self._lease, now)
            if job is None:
                continue  # another replica has it
            async with self._renewing(batch_id):
                next_poll = await self._work(job)
            if next_poll is not None:
                await self._jobs.release(batch_id, self.owner, next_poll)

    async def _polling(self) -> None:
        await woken_rounds(self.poll_once, self._wake, self._settings.poll_seconds,
                           "working on upstream batch jobs")

    @contextlib.asynccontextmanager
    async def _renewing(self, batch_id: str) -> AsyncIterator[None]:
        async def renew() -> None:
            while True:
                await asyncio.sleep(self._settings.lease_seconds / 3)
                await self._jobs.renew(batch_id, self.owner, self._clock() + self._lease)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self, job: UpstreamJob) -> datetime | None:
        """One look at a job; when to look again (None: it is settled or fell back)."""
        now = self._clock()
        batch = await self._jobs.batch(job.batch_id)
        api = self._apis.get(job.provider)
        if batch is None:
            await self._abandon(job, api)
            return None
        if api is None:  # its provider no longer takes batches upstream
            await self._fall_back(job, f"provider {job.provider} no longer has "
                                  "batch: upstream")
            return None
        if job.stop is None and batch.expires_at <= now:
            await self._jobs.stop(job.batch_id, "expired", now)
            job = await self._jobs.get(job.batch_id) or job
        if job.upstream_id is None:
            if job.stop is not None:
                await self._never_ran(job, STOP_REASONS[job.stop])
                return None
            return await self._submit(job, batch, api)
        try:
            if job.stop is not None and not job.stop_sent:
                await api.cancel(job.upstream_id)
                await self._jobs.stop_sent(job.batch_id, self.owner)
            state = await api.state(job.upstream_id)
            if not state.ended:
                return now + self._interval
            outcomes = await api.outcomes(state)
        except UpstreamError as exc:
            log.warning("upstream batch %s of batch %s: %s", job.upstream_id, job.batch_id,
                        exc.message)
            if job.stop is not None and exc.failure_class not in FALLS_BACK:
                # A stopped job the upstream no longer answers for: its results are lost.
                await self._never_ran(job, STOP_REASONS[job.stop])
                return None
            return now + self._interval  # asked again at the next poll
        await self._settle(job, batch, state, outcomes)
        return None

    async def _submit(self, job: UpstreamJob, batch: Batch, api: UpstreamBatchApi
                      ) -> datetime | None:
        items = await self._jobs.items(job.batch_id)
        try:
            key = await batch_key(self._keys, batch.key_id)
            route = self._route_of(job, batch)
            entries = [upstream_entry(self._entrance.gateway, route, batch.model,
                                      item.position, item.request, key.translation)
                       for item in items]
            upstream_id = await api.submit(
                job.upstream_model, batch.display_name or f"batches/{batch.id}",
                [(entry.custom_id, entry.body) for entry in entries], _headers(entries))
        except UpstreamError as exc:
            if exc.failure_class in FALLS_BACK:
                await self._fall_back(job, f"provider {job.provider}'s batch API "
                                      f"refused the batch for now ({exc.message})")
            else:
                await self._failed(job, items, exc)
            return None
        except GatewayError as exc:
            await self._failed(job, items, exc)
            return None
        await self._jobs.submitted(job.batch_id, self.owner, upstream_id, self._clock())
        log.info("batch %s handed to provider %s as %s", job.batch_id, job.provider,
                 upstream_id)
        return self._clock() + self._interval

    def _route_of(self, job: UpstreamJob, batch: Batch) -> UpstreamRoute:
        found = self._entrance.gateway.route(batch.model)
        candidates = [] if found is None else found.candidates
        live: object | None = next(
            (c.provider for c in candidates if c.provider_name == job.provider), None)
        if live is None:
            live, _ = self._entrance.gateway.provider_secrets(job.provider)
        return UpstreamRoute(job.provider, job.upstream_model, self._apis[job.provider], live)

    async def _fall_back(self, job: UpstreamJob, reason: str) -> None:
        note = f"{reason}; the gateway's own workers run this batch instead"
        if await self._jobs.fall_back(job.batch_id, self.owner, note, self._clock()):
            log.warning("batch %s: %s", job.batch_id, note)
            self._wake_workers()

    async def _failed(self, job: UpstreamJob, items: Sequence[JobItem], exc: GatewayError
                      ) -> None:
        error = {"error": item_error(exc)}
        await self._jobs.settle(
            job.batch_id, self.owner, [SettledItem(i.position, ITEM_FAILED, error)
                                       for i in items],
            end_state=FAILED, now=self._clock(),
            note=f"provider {job.provider}'s batch API refused the batch: {exc.message}")

    async def _never_ran(self, job: UpstreamJob, ended: tuple[str, str]) -> None:
        item_state, batch_state = ended
        items = await self._jobs.items(job.batch_id)
        await self._jobs.settle(job.batch_id, self.owner,
                                [SettledItem(i.position, item_state, None) for i in items],
                                end_state=batch_state, now=self._clock())

    async def _abandon(self, job: UpstreamJob, api: UpstreamBatchApi | None) -> None:
        """The batch was deleted: its upstream job is cancelled, as far as it can be, and
        forgotten."""
        if api is not None and job.upstream_id is not None:
            with contextlib.suppress(UpstreamError):
                await api.cancel(job.upstream_id)
        await self._jobs.settle(job.batch_id, self.owner, [], end_state=None,
                                now=self._clock(), note="abandoned")

    async def _settle(self, job: UpstreamJob, batch: Batch, state: JobState,
                      outcomes: Sequence[Outcome]) -> None:
        route = self._route_of(job, batch)
        by_id = {outcome.custom_id: outcome for outcome in outcomes}
        key = await batch_key_or_none(self._keys, batch.key_id)
        translation = key.translation if key is not None else None
        results: list[SettledItem] = []
        records: list[tuple[str, Served, str | None]] = []
        for item in await self._jobs.items(job.batch_id):
            outcome = by_id.get(str(item.position)) or _missing(str(item.position), state)
            if job.stop == "expired" and outcome.kind == "cancelled":
                outcome = Outcome(outcome.custom_id, "expired")  # cancelled for its expiry
            stored, served = settled(self._entrance.gateway, route, batch.model,
                                     item.position, item.request, outcome, translation)
            results.append(stored)
            if served is not None:
                records.append((batch_request_id(batch.id, item.position), served,
                                self._dropped(route, batch, item, translation)))
        if key is not None and records:
            # Journaled (durable) before the results are stored: a settler dying between the
            # two leaves the job open, and whoever settles it again finds these records by
            # their ids and adds only the missing ones.
            recorded = await self._jobs.recorded([request_id for request_id, _, _ in records])
            await self._entrance.meter.record_settled(
                key, batch.model, batch.id, [r for r in records if r[0] not in recorded])
        await self._jobs.settle(job.batch_id, self.owner, results,
                                end_state=_end_state(job, state), now=self._clock(),
                                note=state.error)

    def _dropped(self, route: UpstreamRoute, batch: Batch, item: JobItem,
                 translation: str | None) -> str | None:
        """What the request's translation dropped, for its record (as it was submitted)."""
        try:
            return upstream_entry(self._entrance.gateway, route, batch.model, item.position,
                                  item.request, translation).dropped
        except GatewayError:
            return None


def _headers(entries: Sequence[Entry]) -> dict[str, str]:
    """The headers the requests need (Anthropic's `anthropic-beta` for a beta tool), once
    for the whole batch: a list-valued header gets every request's values."""
    values: dict[str, list[str]] = {}
    for entry in entries:
        for name, value in entry.headers:
            found = values.setdefault(name, [])
            found.extend(v for v in value.split(",") if v not in found)
    return {name: ",".join(found) for name, found in values.items()}


def _missing(custom_id: str, state: JobState) -> Outcome:
    """What a request the ended job gave no result for answers."""
    if state.how == JOB_EXPIRED:
        return Outcome(custom_id, "expired")
    if state.how == JOB_CANCELLED:
        return Outcome(custom_id, "cancelled")
    message = (f"The upstream batch job failed: {state.error}" if state.how == JOB_FAILED
               and state.error else "The upstream batch job returned no result for this "
               "request.")
    return Outcome(custom_id, "errored", error=UpstreamError(
        message, failure_class=FailureClass.UNKNOWN, status="INTERNAL"))


def _end_state(job: UpstreamJob, state: JobState) -> str | None:
    if state.how == JOB_FAILED:
        return FAILED
    if state.how == JOB_EXPIRED or job.stop == "expired":
        return EXPIRED
    if state.how == JOB_CANCELLED or job.stop == "cancelled":
        return CANCELLED
    return None

