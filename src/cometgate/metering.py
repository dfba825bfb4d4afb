"""Per-key limits around each request, and its one usage record.

    admit     access rules (expiry, client IP, model allow-list, billable fields), then the
              limiter reserves the request's worst-case cost (every candidate's output, the
              searches and service tier asked for) and counts it against rpm/rpd/tpm/concurrency
    finish    the real cost from the real usage: the reservation is settled, and the usage
              record is journaled before the caller receives the last byte of the answer —
              so a response the caller fully received always has its record, even if the
              gateway is killed right after; the database commit follows in batches, off the
              request's path (storage/usage_log.py)
    reserve   a stream whose headers go out journals a stand-in record first, so a kill -9
              mid-stream still leaves a record (500, `interrupted`, the prompt estimate)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cometgate.billable_policy import check_billable
from cometgate.canonical import Usage
from cometgate.dialects.billable import NOTHING_BILLABLE, Billable
from cometgate.errors import BudgetExhausted, CallerGone, GatewayError
from cometgate.key_access import check_access
from cometgate.limits import LeaseKeeper, create_keeper
from cometgate.limits.batch_holds import BatchHolds
from cometgate.limits.limiter import Lease, Limiter
from cometgate.limits.policy import Limits, LimitState
from cometgate.pricing import PriceBook, Units
from cometgate.settings import DEFAULT_MAX_CANDIDATES
from cometgate.storage.keys import KeyRecord
from cometgate.storage.money import money_text
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_log import Reservation, UsageLog
from cometgate.tracing import RequestEnd, RequestTrace, Tracer

# Failure classes of a request's own end, not of an upstream fault (FailureClass, which
# drives failover): its caller abandoned it; the gateway died while streaming it (a record
# settled from the stream's reservation at the next start).
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
CACHE_STORAGE = "cachedContents"  # the provider of a cache storage record: the gateway itself


@dataclass(slots=True)
class Ticket:
    """One admitted request, from admission to its usage record."""

    key: KeyRecord
    model: str
    request_id: str
    dialect: str
    stream: bool
    lease: Lease | None  # None when accounting is off
    prompt_tokens: int = 0  # admission's estimate
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    finished: bool = False
    answered: bool = False  # a whole answer exists and is being settled
    reservation: Reservation | None = None  # a stream's stand-in record, until its own
    dropped: str | None = None  # what translation could not carry, as the caller heard it
    trace: RequestTrace | None = None  # its span, when telemetry is on
    batch_id: str | None = None  # the Gemini batch this request runs in, for its record

    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()


@dataclass(frozen=True, slots=True)
class Served:
    """How a request ended, for its record."""

    status: int
    usage: Usage | None = None
    provider: str | None = None
    upstream_model: str | None = None
    failure_class: str | None = None


class Meter:
    """`enabled=False` keeps the access rules but neither limits nor records (for measuring
    what accounting costs; `server.accounting: false`)."""

    def __init__(
        self,
        limiter: Limiter,
        prices: PriceBook,
        usage: UsageLog,
        *,
        keeper: LeaseKeeper | None = None,
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        searches_reserved: int = 1,
        enabled: bool = True,
        tracer: Tracer | None = None,
        holds: BatchHolds | None = None,
    ) -> None:
        self._limiter = limiter
        self._prices = prices
        self._usage = usage
        # Renews the leases of requests in flight; the same limiter's, so one lease TTL.
        self._keeper = keeper if keeper is not None else create_keeper(limiter)
        self._max_candidates = max_candidates
        # The most searches one answer can run (an upstream's bound, or the gateway's own
        # search backend's), reserved for a request that offers a search tool.
        self._searches_reserved = searches_reserved
        self._enabled = enabled
        self._tracer = tracer
        self._holds = holds  # what unfinished batches hold of their keys' budgets

    async def admit(
        self,
        key: KeyRecord,
        model: str,
        *,
        client_ip: str | None,
        prompt_tokens: int,
        max_output_tokens: int,
        request_id: str,
        dialect: str,
        stream: bool,
        billable: Billable = NOTHING_BILLABLE,
        model_translation: str = "default",
        operation: str = "chat",
        batch_id: str | None = None,
    ) -> Ticket:
        """`max_output_tokens` is one candidate's limit; the reservation counts every one.
        `batch_id`: the request is one of that batch's (its record says so, and it is
        admitted against the budget less what the key's other batches hold).
        When telemetry is on, the request's span starts here (`operation`:
        gen_ai.operation.name), and a refusal ends it at once."""
        trace = None if self._tracer is None else self._tracer.start_request(
            operation=operation, model=model, dialect=dialect, stream=stream)
        started = time.perf_counter() if trace is not None else 0.0
        try:
            now = datetime.now(UTC)
            check_access(key, model, client_ip, now)
            check_billable(key, model_translation, billable,
                           max_candidates=self._max_candidates)
            if not self._enabled:
                ticket = Ticket(key, model, request_id, dialect, stream, lease=None,
                                finished=True, batch_id=batch_id)
            else:
                worst = self.worst_case(model, prompt_tokens, max_output_tokens, billable)
                lease = await self._acquire(key, prompt_tokens, worst, now, batch_id)
                self._keeper.track(lease)
                ticket = Ticket(key, model, request_id, dialect, stream, lease, prompt_tokens,
                                batch_id=batch_id)
        except BaseException as exc:
            if trace is not None:
                refused = served_failure(exc)
                trace.end(RequestEnd(refused.status, None, None, None, refused.failure_class,
                                     time.perf_counter() - started, None))
            raise
        ticket.trace = trace
        return ticket

    async def _acquire(self, key: KeyRecord, tokens: int, cost: Decimal, now: datetime,
                       batch_id: str | None) -> Lease:
        """The limiter's lease, with the key's budgets less what its batches hold."""
        limits = key.limits()
        budgeted = limits.budget_total is not None or limits.budget_period_amount is not None
        held = (self._holds.of_key(key.id, besides=batch_id)
                if self._holds is not None and budgeted else Decimal(0))
        if not held:
            return await self._limiter.acquire(key.id, limits, tokens=tokens, cost=cost,
                                               now=now)
        try:
            return await self._limiter.acquire(key.id, _less(limits, held), tokens=tokens,
                                               cost=cost, now=now)
        except BudgetExhausted as exc:
            raise BudgetExhausted(
                "Budget exhausted: this API key's budget is spent, reserved by requests in "
                f"flight, or held by its unfinished batches ({money_text(held)} USD).",
                retry_after=exc.retry_after) from None

    @property
    def enabled(self) -> bool:
        return self._enabled

    def worst_case(self, model: str, prompt_tokens: int, max_output_tokens: int,
                   billable: Billable = NOTHING_BILLABLE) -> Decimal:
        """What `admit` would reserve for such a request now (a batch reserves its sum)."""
        return self._prices.worst_case(
            model, prompt_tokens, max_output_tokens * billable.candidates, datetime.now(UTC),
            service_tier=billable.service_tier,
            searches=self._searches_reserved if billable.search else 0,
            units=Units(fetched_pages=billable.page_fetches,
                        sandbox_seconds=billable.sandbox_seconds, images=billable.images),
        )

    async def charge_storage(
        self, key: KeyRecord, model: str, *, request_id: str, tokens: int, held: timedelta
    ) -> None:
        """Keeping a cachedContent for `held`: charged to the key's budget up front (refused
        when the budget cannot take it) and recorded as a usage record of its own, with
        provider `cachedContents` and no tokens. Nothing when the model prices no storage."""
        if not self._enabled:
            return
        now = datetime.now(UTC)
        cost = self._prices.storage_cost(model, tokens, held, now)
        if not cost:
            return
        lease = await self._acquire(key, 0, cost, now, None)  # what batches hold counts too
        await self._limiter.settle(lease, tokens=0, cost=cost, now=now)
        ticket = Ticket(key, model, request_id, "gemini", False, lease, 0)
        record = self._record(ticket, Served(200, Usage(), CACHE_STORAGE, None), Usage(), cost,
                              now, ended=time.perf_counter())
        self._usage.record(record, settles=None)

    async def record_settled(self, key: KeyRecord, model: str, batch_id: str,
                             answers: Sequence[tuple[str, Served, str | None]]) -> None:
        """Requests an upstream's own batch API ran, each (its request id, how it ended, what
        its translation dropped): their real cost (usage priced at the tier it reports,
        "batch") is added to what the key spent, and each is recorded. They ran already, so
        no limit refuses them; what their batch held for them is given back by its hold
        (limits/batch_holds). The spend goes through one lease for all of them, so the key's
        request counts grow by one, not by the batch's size."""
        if not self._enabled or not answers:
            return
        now = datetime.now(UTC)
        costs = [self._prices.cost(model, served.usage, now) if served.usage else Decimal(0)
                 for _, served, _ in answers]
        lease = await self._limiter.acquire(key.id, Limits(), tokens=0, cost=Decimal(0),
                                            now=now)
        await self._limiter.settle(lease, tokens=0, cost=sum(costs, Decimal(0)), now=now)
        for (request_id, served, dropped), cost in zip(answers, costs, strict=True):
            ticket = Ticket(key, model, request_id, "gemini", False, lease,
                            batch_id=batch_id, dropped=dropped)
            record = self._record(ticket, served, served.usage or Usage(), cost, now,
                                  ended=ticket.started)
            self._usage.record(record, settles=None)

    async def aclose(self) -> None:
        """Stop renewing: leases still open lapse one TTL later (the process is ending)."""
        await self._keeper.aclose()

    async def state(self, key: KeyRecord) -> LimitState:
        return await self._limiter.state(key.id, key.limits(), datetime.now(UTC))

    def reserve(self, ticket: Ticket, provider: str | None, upstream_model: str | None) -> None:
        """A stream's headers are going out: journal the record it will have if the process
        dies before it ends — status 500, failure class `interrupted`, the admission's prompt
        estimate and its price (what is known without the upstream's word). Its own record
        replaces it; recovery commits it only if that never came."""
        if ticket.finished or ticket.lease is None:
            return
        now = datetime.now(UTC)
        usage = Usage(prompt_tokens=ticket.prompt_tokens)
        ticket.reservation = self._usage.reserve(self._record(
            ticket, Served(500, usage, provider, upstream_model, INTERRUPTED),
            usage, self._prices.cost(ticket.model, usage, now), now, ended=ticket.started))

    async def finish(self, ticket: Ticket, served: Served) -> None:
        """Settle and record, exactly once per ticket whatever path ends the request."""
        if ticket.trace is not None:
            trace, ticket.trace = ticket.trace, None
            trace.end(_request_end(ticket, served))
        if ticket.finished or ticket.lease is None:
            return
        ticket.finished = True
        self._keeper.forget(ticket.lease)
        now = datetime.now(UTC)
        usage = served.usage or Usage()
        cost = self._prices.cost(ticket.model, usage, now) if served.usage else Decimal(0)
        await self._limiter.settle(
            ticket.lease, tokens=usage.total_tokens, cost=cost, now=now
        )
        record = self._record(ticket, served, usage, cost, now, ended=time.perf_counter())
        self._usage.record(record, settles=ticket.reservation)

    @staticmethod
    def _record(
        ticket: Ticket, served: Served, usage: Usage, cost: Decimal, now: datetime, *,
        ended: float,
    ) -> UsageRecord:
        return UsageRecord(
            request_id=ticket.request_id,
            key_id=ticket.key.id,
            model=ticket.model,
            provider=served.provider,
            upstream_model=served.upstream_model,
            dialect=ticket.dialect,
            stream=ticket.stream,
            status=served.status,
            failure_class=served.failure_class,
            prompt_tokens=usage.prompt_tokens,
            output_tokens=usage.output_tokens,
            thoughts_tokens=usage.thoughts_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=cost,
            searches=usage.searches,
            fetched_pages=usage.fetched_pages,
            sandbox_seconds=usage.sandbox_seconds,
            images=usage.images,
            latency_ms=(ended - ticket.started) * 1000,
            ttfb_ms=(ticket.first_byte - ticket.started) * 1000 if ticket.first_byte else None,
            created_at=now,
            dropped=ticket.dropped,
            batch_id=ticket.batch_id,
        )


def _request_end(ticket: Ticket, served: Served) -> RequestEnd:
    ended = time.perf_counter()
    first = ticket.first_byte
    return RequestEnd(
        status=served.status, usage=served.usage, provider=served.provider,
        upstream_model=served.upstream_model, failure_class=served.failure_class,
        seconds=ended - ticket.started,
        first_chunk_seconds=first - ticket.started if ticket.stream and first else None)


def _less(limits: Limits, held: Decimal) -> Limits:
    """`limits` with `held` taken off each budget (never below nothing)."""
    total, period = limits.budget_total, limits.budget_period_amount
    return replace(
        limits,
        budget_total=None if total is None else max(Decimal(0), total - held),
        budget_period_amount=None if period is None else max(Decimal(0), period - held),
    )


def served_failure(error: BaseException) -> Served:
    if isinstance(error, CallerGone):  # the usage the upstream reported is not known here
        return Served(error.http_status, failure_class=CANCELLED)
    if isinstance(error, GatewayError):
        failure = getattr(error, "failure_class", None)
        return Served(error.http_status, failure_class=failure.value if failure else None)
    return Served(500, failure_class="unknown")
