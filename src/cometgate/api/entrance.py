"""What every metered route shares: who calls, which model, admission against the key's
limits and budget, and the usage record when the answer ends. One key therefore has the same
limits, the same budget and the same records whichever dialect it speaks. The generate
request of every dialect goes through these in one place, the request frame (api/frame); the
special routes (token counts, embeddings, compaction, batches) call them directly:

    key = await entrance.caller(request)
    info = entrance.model(name) or raise the dialect's own "not found"
    ticket = await entrance.admit(request, key, info, estimate=…, dialect=…, stream=…)
    return await entrance.metered(request, ticket, lambda: answer(ticket))

`metered` settles the ticket when the answer fails before it is built; a built answer settles
it itself (`finish`, or `on_end` for a stream, once the stream has ended however it ends).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from cometgate.api.auth import KeyAuthenticator
from cometgate.api.body import BodyPace, read_body
from cometgate.api.caller_watch import until_caller_leaves
from cometgate.api.json_depth import MAX_JSON_DEPTH, nesting_exceeds
from cometgate.api.rate_limit_headers import rate_limit_headers
from cometgate.api.streams import OnEnd
from cometgate.canonical import EmbedRequest, ModelInfo, Usage
from cometgate.dialects.billable import NOTHING_BILLABLE, Billable
from cometgate.dialects.estimate import CHARS_PER_TOKEN
from cometgate.errors import InvalidRequest
from cometgate.key_access import check_access
from cometgate.metering import Meter, Served, Ticket, served_failure
from cometgate.pipeline import Dropped, Gateway
from cometgate.storage.keys import KeyRecord
from cometgate.tracing import operation_name

DROPPED_HEADER = "x-cometgate-dropped"
UPSTREAM_MODEL_HEADER = "x-cometgate-upstream-model"
ServedBy = tuple[str, str] | None  # (provider, upstream model) that answered


@dataclass(frozen=True, slots=True)
class Entrance:
    gateway: Gateway
    auth: KeyAuthenticator
    meter: Meter
    max_body_bytes: int
    body_pace: BodyPace = BodyPace()

    async def caller(self, request: Request) -> KeyRecord:
        return await self.auth.authenticate(request)

    async def body(self, request: Request) -> bytes:
        body = await read_body(request, self.max_body_bytes, self.body_pace)
        if nesting_exceeds(body):
            raise InvalidRequest(
                f"Invalid JSON payload: nested more than {MAX_JSON_DEPTH} levels deep.")
        return body

    def model(self, name: str) -> ModelInfo | None:
        return self.gateway.model(name)

    def models_for(self, key: KeyRecord) -> list[ModelInfo]:
        """The models a key may use: a key limited to some models sees only those."""
        return [info for info in self.gateway.models() if key.allows_model(info.id)]

    def model_for(self, key: KeyRecord, name: str) -> ModelInfo | None:
        """`name` as the key sees it: a model it may not use is not there (each dialect's 404,
        which says no more than that)."""
        info = self.gateway.model(name)
        return info if info is not None and key.allows_model(info.id) else None

    def check_access(self, request: Request, key: KeyRecord, info: ModelInfo) -> None:
        """The key's access rules, for calls that are not metered (token counts)."""
        check_access(key, info.id, client_ip(request), datetime.now(UTC))

    async def admit(
        self,
        request: Request,
        key: KeyRecord,
        info: ModelInfo,
        *,
        estimate: tuple[int, int | None],
        dialect: str,
        stream: bool,
        billable: Billable = NOTHING_BILLABLE,
        translation: str | None = None,
    ) -> Ticket:
        """Admission against the key's access rules, limits and budget. `estimate` is (prompt
        tokens, the caller's output limit or None); without a caller limit the worst case is
        the model's default output limit, else its maximum. A caller's limit above the model's
        maximum (1e30, say: the decoder refuses it later) costs no more than that maximum.
        `billable` is what the request asks for beyond tokens; `translation` the model's
        policy, when the caller has its route already."""
        return await self.admit_from(
            client_ip(request), request.scope["state"]["request_id"], key, info,
            estimate=estimate, dialect=dialect, stream=stream, billable=billable,
            translation=translation)

    async def admit_from(
        self,
        ip: str | None,
        request_id: str,
        key: KeyRecord,
        info: ModelInfo,
        *,
        estimate: tuple[int, int | None],
        dialect: str,
        stream: bool,
        billable: Billable = NOTHING_BILLABLE,
        batch_id: str | None = None,
        translation: str | None = None,
    ) -> Ticket:
        """`admit` for a request that is not an HTTP request of its own (a batch's)."""
        prompt_tokens = estimate[0]
        return await self.meter.admit(
            key, info.id,
            client_ip=ip,
            prompt_tokens=prompt_tokens,
            max_output_tokens=worst_output(info, estimate),
            request_id=request_id,
            dialect=dialect,
            stream=stream,
            billable=billable,
            model_translation=translation or self.gateway.translation(info.id),
            operation=operation_name(
                dialect, embedding="embedContent" in info.generation_methods),
            batch_id=batch_id,
        )

    async def metered(
        self, request: Request, ticket: Ticket, answer: Callable[[], Awaitable[Response]]
    ) -> Response:
        """The answer, cancelled if the caller hangs up before it is ready (recorded 499)."""
        try:
            return await until_caller_leaves(request.receive, answer,
                                             settling=lambda: ticket.answered)
        except BaseException as exc:
            await self.meter.finish(ticket, served_failure(exc))
            raise

    async def finish(self, ticket: Ticket, usage: Usage | None, served_by: ServedBy) -> None:
        """A whole answer was produced: settle and record it."""
        ticket.answered = True  # a caller leaving now is not told, and interrupts nothing
        await self.meter.finish(ticket, served(200, usage, served_by))

    def on_end(self, ticket: Ticket, served_by: ServedBy) -> OnEnd:
        """What a stream calls once, when it has ended. Called as the stream's headers are
        about to go out: its stand-in record is journaled now (see Meter.reserve)."""
        provider, upstream = served_by or (None, None)
        self.meter.reserve(ticket, provider, upstream)

        async def ended(end: Served) -> None:
            await self.meter.finish(
                ticket, served(end.status, end.usage, served_by, end.failure_class))

        return ended

    async def answer_headers(self, ticket: Ticket, served_by: ServedBy) -> dict[str, str]:
        """The headers of a generated answer: the rate-limit headers, and the upstream's own
        name of the model that answered (the body names the model as the caller asked)."""
        headers = await self.limit_headers(ticket)
        if served_by is not None:
            headers[UPSTREAM_MODEL_HEADER] = served_by[1]
        return headers

    async def limit_headers(self, ticket: Ticket) -> dict[str, str]:
        """OpenAI-style rate-limit headers, for keys that have request or token limits."""
        limits = ticket.key.limits()
        no_limits = limits.rpm is None and limits.tpm is None and limits.rpd is None
        if no_limits or ticket.lease is None:  # nothing to report, or accounting is off
            return {}
        return rate_limit_headers(await self.meter.state(ticket.key))


def worst_output(info: ModelInfo, estimate: tuple[int, int | None]) -> int:
    """The output tokens admission reserves: the caller's limit, else the model's default,
    else its maximum; never above the maximum."""
    max_output = estimate[1]
    worst = max_output or info.default_max_output_tokens or info.output_token_limit
    return min(worst, info.output_token_limit)


def served(
    status: int, usage: Usage | None, served_by: ServedBy, failure_class: str | None = None,
) -> Served:
    provider, upstream = served_by or (None, None)
    return Served(status, usage, provider, upstream, failure_class)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def dropped_header(
    dropped: Dropped, caller_path: Callable[[str], str], ticket: Ticket | None = None
) -> dict[str, str]:
    """What the translation could not carry, named as the caller named it (`caller_path`
    turns a canonical path into the caller's dialect's); noted on `ticket` for its usage
    record too, so call this before the record is made."""
    paths = dropped.caller + tuple(caller_path(p) for p in dropped.canonical)
    if not paths:
        return {}
    listed = ",".join(dict.fromkeys(paths))
    if ticket is not None:
        ticket.dropped = listed
    return {DROPPED_HEADER: listed}


def embedding_estimate(request: EmbedRequest) -> tuple[int, int | None]:
    """Admission's estimate for an embedding: its texts' tokens, and no output to speak of."""
    chars = sum(len(item.titled_text) for item in request.inputs)
    return chars // CHARS_PER_TOKEN + len(request.inputs), None
