"""The flow of one request, top to bottom: route → check → prepare → attempt → account.

    generate(request)  → _prepared → _attempt → metrics
    stream(request)    → _prepared → first event pulled (errors still become HTTP statuses)
                       → events relayed → metrics once the stream ends, however it ends
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace

from cometgate.canonical import (
    GenerateRequest,
    GenerateResponse,
    ModelInfo,
    StreamEvent,
    StreamStarted,
    Usage,
    UsageReported,
)
from cometgate.capabilities import check_request, with_model_defaults
from cometgate.errors import InternalError, InvalidRequest, NotFound, UpstreamError
from cometgate.metrics import Metrics
from cometgate.providers.base import CountsTokens
from cometgate.routing.resolve import Route, Router


@dataclass(frozen=True, slots=True)
class Dropped:
    """What was not carried to the upstream, for the caller's report. `caller` holds paths in
    the caller's own dialect (fields with no canonical meaning); `canonical` holds canonical
    paths ("params.top_k", "messages[1].parts[0].signature") that the inbound dialect names
    in its own terms."""

    caller: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    response: GenerateResponse
    dropped: Dropped


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    events: AsyncIterator[StreamEvent]
    dropped: Dropped


class Gateway:
    def __init__(self, router: Router, metrics: Metrics) -> None:
        self._router = router
        self._metrics = metrics

    def models(self) -> list[ModelInfo]:
        return self._router.models()

    def model(self, name: str) -> ModelInfo | None:
        route = self._router.resolve(name)
        return route.info if route else None

    async def generate(self, request: GenerateRequest) -> Outcome:
        route, prepared, caller_drops = self._prepared(request)
        try:
            response = await route.provider.generate(prepared, route.target)
        except UpstreamError as exc:
            self._metrics.upstream_error(route.provider_name, exc.failure_class.value)
            raise
        self._metrics.usage(route.info.id, response.usage)
        return Outcome(response, _dropped(request, caller_drops, response.dropped))

    async def stream(self, request: GenerateRequest) -> StreamOutcome:
        route, prepared, caller_drops = self._prepared(request)
        events = route.provider.stream(prepared, route.target)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise InternalError("the upstream stream ended before it started") from None
        except UpstreamError as exc:
            self._metrics.upstream_error(route.provider_name, exc.failure_class.value)
            await events.aclose()
            raise
        upstream_drops = first.dropped if isinstance(first, StreamStarted) else ()
        dropped = _dropped(request, caller_drops, upstream_drops)
        return StreamOutcome(self._relay(route, first, events), dropped)

    async def count_tokens(self, request: GenerateRequest) -> int:
        route, prepared, _ = self._prepared(request)
        if not isinstance(route.provider, CountsTokens):
            raise InvalidRequest(f"countTokens is not supported for models/{route.info.id}.")
        try:
            return await route.provider.count_tokens(prepared, route.target)
        except UpstreamError as exc:
            self._metrics.upstream_error(route.provider_name, exc.failure_class.value)
            raise

    def _prepared(self, request: GenerateRequest) -> tuple[Route, GenerateRequest, tuple[str, ...]]:
        route = self._router.resolve(request.model)
        if route is None:
            raise NotFound(f"models/{request.model} is not found.")
        check_request(request, route.info)
        dropped = _untranslated(request, route.info)
        prepared = with_model_defaults(request, route.info)
        return route, replace(prepared, model=route.info.id), dropped

    async def _relay(
        self, route: Route, first: StreamEvent, events: AsyncGenerator[StreamEvent, None]
    ) -> AsyncIterator[StreamEvent]:
        usage: Usage | None = None
        try:
            yield first
            async for event in events:
                if isinstance(event, UsageReported):
                    usage = event.usage
                yield event
        except UpstreamError as exc:
            self._metrics.upstream_error(route.provider_name, exc.failure_class.value)
            raise
        finally:
            await events.aclose()  # closes the upstream response when the caller goes away
            if usage is not None:
                self._metrics.usage(route.info.id, usage)


def _untranslated(request: GenerateRequest, model: ModelInfo) -> tuple[str, ...]:
    """Refuse caller fields no upstream of this model can carry; return those that may be
    dropped with a report. Same-dialect pass-through upstreams will carry them all."""
    refused = [u for u in request.untranslated if not u.droppable]
    if refused:
        lines = [f"{u.path} is not supported by models/{model.id}: {u.reason}" for u in refused]
        raise InvalidRequest(
            "\n".join(lines), violations={u.path: u.reason for u in refused}
        )
    return tuple(u.path for u in request.untranslated)


def _dropped(
    request: GenerateRequest, caller: tuple[str, ...], upstream: tuple[str, ...]
) -> Dropped:
    """Upstream codecs report "path: reason"; the caller hears the paths of what *it* sent.
    A parameter the gateway filled in from the model's defaults is not the caller's to hear
    about."""
    paths = (entry.partition(":")[0].strip() for entry in upstream)
    sent = request.params
    canonical = tuple(
        path for path in paths
        if not (path.startswith("params.") and getattr(sent, path[7:], 0) is None)
    )
    return Dropped(caller, canonical)
