"""The flow of one request, top to bottom:

    generate(call)  → route → plan attempts → failover → _attempt → account
    stream(call)    → route → plan attempts → failover over "open and read the first event"
                      → relay (no failover once the first byte can have reached the caller)
                      → account once the stream ends, however it ends
    count_tokens    → route → failover over "count exactly": the caller's own count request
                      forwarded to an upstream that counts in its dialect, or translated for
                      one that counts another way; refused, never estimated, where none can

An attempt forwards the caller's bytes when the upstream speaks the caller's dialect (the
fast, faithful path); otherwise it decodes the call once into the canonical model, checks it
against the model's capabilities and translation policy, and lets the provider translate.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar, cast

from cometgate.canonical import (
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ModelInfo,
    StreamEvent,
    StreamStarted,
    StreamUsage,
    Usage,
    WebSearchTool,
)
from cometgate.canonical.images import ImageRequest, ImageResponse
from cometgate.canonical.refusals import (
    BuiltinTool,
    CodeExecutionUnsupported,
    ImageOutputUnsupported,
    ToolUnavailable,
)
from cometgate.canonical.stream import response_events
from cometgate.capabilities import (
    RefusalWords,
    adaptive_as_no_thinking,
    check_request,
    efforts_as_offered_levels,
    levels_as_budget,
    with_model_defaults,
)
from cometgate.code_execution import emulated, runs_code
from cometgate.context_window import refusal_after_failure, refusal_before_sending
from cometgate.dialects.gemini.refusals import gemini_refusal, search_refusal
from cometgate.dialects.responses.reasoning_summary import summary_without_thinking
from cometgate.drawing import as_generate_response, image_output_mode, image_request_for
from cometgate.errors import (
    FailureClass,
    InternalError,
    InvalidRequest,
    NotFound,
    RequestRejected,
    UpstreamError,
)
from cometgate.grounding.search_backends import SearchBackend
from cometgate.grounding.search_run import SearchRun
from cometgate.grounding.url_context import UrlContextRead
from cometgate.metrics import Metrics
from cometgate.providers.base import (
    CountsTokens,
    ForwardsCount,
    ForwardsRaw,
    RawCall,
    RawChunk,
    RawResponse,
    Target,
)
from cometgate.providers.embedding import Embeds
from cometgate.providers.images import MakesImages
from cometgate.providers.local.provider import LocalProvider
from cometgate.routing.failover import Failover, Skip
from cometgate.routing.plan import Attempt, Planner
from cometgate.routing.resolve import ModelRoute, Router
from cometgate.sandbox import BubblewrapSandbox
from cometgate.tool_support import (
    GatewayTools,
    SupportOf,
    ToolSupport,
    best_support,
    code_execution_support,
    google_maps_support,
    google_search_support,
    served_tools,
    url_context_support,
)
from cometgate.tracing import Tracer, operation_name
from cometgate.url_context_step import (
    UrlContextStep,
    UrlReader,
    answer_with_pages,
    stream_with_pages,
)

T = TypeVar("T")  # what one request kind's attempt yields
# The caller's bytes made ready for one forwarding attempt (provider name, provider, target):
# a reference to a gateway file becomes one to that upstream's copy.
PrepareRaw = Callable[[RawCall, str, object, Target], Awaitable[RawCall]]
E = TypeVar("E")
R = TypeVar("R")


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
    """Either a canonical response (translated path) or the upstream's own bytes."""

    response: GenerateResponse | None
    dropped: Dropped = Dropped()
    raw: RawResponse | None = None
    served_by: tuple[str, str] | None = None  # (provider, upstream model) that answered

    @property
    def usage(self) -> Usage | None:
        if self.raw is not None:
            return self.raw.usage
        return self.response.usage if self.response is not None else None


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    """`usage` is what the stream has reported so far, filled as `events` (or `raw`) are
    read: the one account of it, for the caller's record as for the metrics."""

    events: AsyncIterator[StreamEvent] | None
    dropped: Dropped = Dropped()
    raw: AsyncIterator[RawChunk] | None = None
    served_by: tuple[str, str] | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)


@dataclass(frozen=True, slots=True)
class EmbedOutcome:
    response: EmbedResponse
    served_by: tuple[str, str]


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    response: ImageResponse
    served_by: tuple[str, str]


@dataclass(frozen=True, slots=True)
class CountOutcome:
    total: int | None
    raw: RawResponse | None = None


class Call:
    """One caller request: its model, its dialect, its own bytes for a same-dialect upstream,
    and how to decode it into the canonical model — done at most once, and only if an attempt
    needs it (a decode error then belongs to the attempts that needed it)."""

    def __init__(
        self,
        model: str,
        *,
        dialect: str,
        decode: Callable[[], GenerateRequest],
        raw: RawCall | None = None,
        translation: str | None = None,
        words: RefusalWords | None = None,
        prepare_raw: PrepareRaw | None = None,
        route: ModelRoute | None = None,
    ) -> None:
        self.model, self.dialect, self.raw = model, dialect, raw
        self.route = route  # resolved already by the request frame: not resolved again
        self._prepare_raw = prepare_raw
        self.translation = translation  # the caller's key overrides the model's policy
        self.words = words or gemini_refusal  # a model's refusals, in the caller's dialect
        self._decode = decode
        self._decoded: GenerateRequest | RequestRejected | None = None
        self.search_run: SearchRun | None = None  # the gateway's own web search, run once

    @classmethod
    def of(cls, call: Call | GenerateRequest) -> Call:
        """A call as it is, or a canonical request as a call that nothing forwards."""
        if isinstance(call, Call):
            return call
        return cls(call.model, dialect="canonical", decode=lambda: call)

    async def prepared(self, raw: RawCall, option: Attempt) -> RawCall:
        """The bytes to forward on this attempt."""
        if self._prepare_raw is None:
            return raw
        candidate = option.candidate
        return await self._prepare_raw(raw, candidate.provider_name, candidate.provider,
                                       option.target)

    def request(self) -> GenerateRequest:
        if self._decoded is None:
            try:
                self._decoded = self._decode()
            except RequestRejected as exc:
                self._decoded = exc
        if isinstance(self._decoded, RequestRejected):
            raise self._decoded
        return self._decoded


class Gateway:
    def __init__(
        self, router: Router, metrics: Metrics, *, planner: Planner, failover: Failover,
        search: SearchBackend | None = None,
        tracer: Tracer | None = None,
        url_reader: UrlReader | None = None,
        sandbox: BubblewrapSandbox | None = None,
    ) -> None:
        """`tracer`: None when telemetry is off (nothing is traced, at no cost)."""
        self._router = router
        self._search = search  # the operator's search backend, for emulated grounding
        self._metrics = metrics
        self._planner = planner
        self._failover = failover
        self._tracer = tracer
        self._sandbox = sandbox  # runs code for models whose upstream does not; None: off
        self._forwards = ForwardedDialects()
        self._url_reader = url_reader  # None: URL context only where the upstream reads URLs
        self._tools = GatewayTools(fetches_pages=url_reader is not None,
                                   searches=search is not None,
                                   runs_code=sandbox is not None)

    def model_tools(self, name: str) -> dict[str, str | None]:
        """The built-in tools the model serves and how (`tool_support`), for GET models."""
        route = self._router.resolve(name)
        return {} if route is None else served_tools(route, self._tools)

    def models(self) -> list[ModelInfo]:
        return self._router.models()

    def model(self, name: str) -> ModelInfo | None:
        route = self._router.resolve(name)
        return route.info if route else None

    def route(self, name: str) -> ModelRoute | None:
        """The model `name` and its candidates, resolved once for a whole request."""
        return self._router.resolve(name)

    def search_grounding(self, name: str) -> str | None:
        """How the model serves Google Search grounding, for the models listing: "native"
        (an upstream of it searches), "emulated" (the gateway's search backend), or None."""
        return self.model_tools(name).get("googleSearch")

    def translates_for(self, name: str, dialect: str) -> bool:
        """Whether some upstream of model `name` takes a call of `dialect` translated (so
        decoded) rather than forwarded as its bytes."""
        return self.translates(self._router.resolve(name), dialect)

    def translates(self, route: ModelRoute | None, dialect: str) -> bool:
        """`translates_for` of a model resolved already."""
        return route is not None and any(
            dialect not in self._forwards.of(type(c.provider)) for c in route.candidates)

    def provider_secrets(self, provider_name: str) -> tuple[object | None, tuple[str | None, ...]]:
        """A provider by name and the secrets its candidates use (None: its own), for work on
        the upstream beyond a request (its copies of a gateway cache)."""
        provider: object | None = None
        secrets: list[str | None] = []
        for route in self._router.routes():
            for candidate in route.candidates:
                if candidate.provider_name == provider_name:
                    provider = candidate.provider
                    found = [c.secret for c in candidate.credentials] or [None]
                    secrets.extend(s for s in found if s not in secrets)
        return provider, tuple(secrets)

    def translation(self, name: str) -> str:
        """The model's translation policy (a call's key may override it)."""
        route = self._router.resolve(name)
        return route.translation if route else "default"

    async def generate(self, call: Call | GenerateRequest) -> Outcome:
        call = Call.of(call)
        route = self._route(call)
        pages = self._url_context_step()

        async def attempt(option: Attempt) -> Outcome:
            if _draws(route, option.candidate.provider):
                drawn, dropped = await self._drawn(call, route, option)
                return Outcome(drawn, Dropped(dropped), served_by=_served_by(option))
            forwarder, raw_call = _forwarding(call, option.candidate.provider, self._forwards)
            if forwarder is not None and raw_call is not None:
                prepared = await self._forwarded(
                    call, route, option, lambda: call.prepared(raw_call, option))
                raw = await self._forwarded(
                    call, route, option, lambda: forwarder.forward(prepared, option.target))
                return Outcome(None, raw=raw, served_by=_served_by(option))
            request, dropped = self._translated(call, route)
            request, read = await self._url_context_and_maps(call, route, option, request, pages)
            provider = option.candidate.provider
            request, run, dropped = await self._searched(call, route, option, request, dropped)
            if request.code_execution and not runs_code(provider):
                response = await self._sandboxed(call, route, option, request)
            else:
                response = await self._sent(call, route, option, request,
                                            lambda: provider.generate(request, option.target))
            if run is not None:
                response = run.grounded(response)
            if read is not None:
                response = answer_with_pages(response, read)
            return Outcome(response, dropped_report(call.request(), dropped, response.dropped),
                           served_by=_served_by(option))

        outcome = await self._run(route, attempt, strict=_policy(call, route) == "strict",
                                  traced=call)
        if outcome.usage is not None:
            self._metrics.usage(route.info.id, outcome.usage)
        return outcome

    async def stream(self, call: Call | GenerateRequest) -> StreamOutcome:
        call = Call.of(call)
        route = self._route(call)
        pages = self._url_context_step()

        async def attempt(option: Attempt) -> StreamOutcome:
            if _draws(route, option.candidate.provider):
                response, dropped = await self._drawn(call, route, option)
                drawn = response_events(response)
                usage = StreamUsage()
                relayed = self._relay(route, option, await _first(drawn), drawn, usage)
                return StreamOutcome(relayed, Dropped(dropped), served_by=_served_by(option),
                                     usage=usage)
            forwarder, raw_call = _forwarding(call, option.candidate.provider, self._forwards)
            if forwarder is not None and raw_call is not None:
                prepared = await self._forwarded(
                    call, route, option, lambda: call.prepared(raw_call, option))
                chunks = forwarder.forward_stream(prepared, option.target)
                first_chunk = await self._forwarded(call, route, option, lambda: _first(chunks))
                usage = StreamUsage()
                relay = self._relay_raw(route, option, first_chunk, chunks, usage)
                return StreamOutcome(None, raw=relay, served_by=_served_by(option), usage=usage)
            request, dropped = self._translated(call, route)
            request, read = await self._url_context_and_maps(call, route, option, request, pages)
            request, run, dropped = await self._searched(call, route, option, request, dropped)

            async def opened() -> tuple[AsyncGenerator[StreamEvent, None], StreamEvent]:
                if request.code_execution and not runs_code(option.candidate.provider):
                    # Run whole, then streamed: each round must end before the next begins.
                    events = response_events(
                        await self._sandboxed(call, route, option, request))
                else:
                    events = option.candidate.provider.stream(request, option.target)
                if run is not None:
                    events = run.grounded_events(events)
                return events, await _first(events)

            events, first = await self._sent(call, route, option, request, opened)
            if read is not None:
                events = stream_with_pages(events, read)
            upstream_drops = first.dropped if isinstance(first, StreamStarted) else ()
            usage = StreamUsage()
            relay_events = self._relay(route, option, first, events, usage)
            return StreamOutcome(relay_events,
                                 dropped_report(call.request(), dropped, upstream_drops),
                                 served_by=_served_by(option), usage=usage)

        return await self._run(route, attempt, strict=_policy(call, route) == "strict",
                               traced=call)

    async def count_tokens(self, call: Call | GenerateRequest) -> CountOutcome:
        """The prompt's exact count from an upstream that can give one; never an estimate.
        Not a generation: nothing is recorded as usage."""
        call = Call.of(call)
        route = self._route(call, counting=True)

        async def attempt(option: Attempt) -> CountOutcome:
            provider = option.candidate.provider
            forwarder = _count_forwarding(call, provider)
            if forwarder is not None and call.raw is not None:
                prepared = await call.prepared(call.raw, option)
                return CountOutcome(None, raw=await forwarder.forward_count(prepared,
                                                                            option.target))
            if not isinstance(provider, CountsTokens):
                raise Skip(_no_exact_count(route.info.id, option.candidate.provider_name))
            request, _ = self._translated(call, route)
            return CountOutcome(await _translating(provider.count_tokens(request, option.target)))

        return await self._run(route, attempt, strict=_policy(call, route) == "strict")

    async def embed(self, request: EmbedRequest) -> EmbedOutcome:
        """Vectors from the first candidate that can embed; the same failover as a generation
        (an embedding carries nothing that a translation could lose)."""
        route = self._router.resolve(request.model)
        if route is None:
            raise NotFound(f"models/{request.model} is not found.")
        if "embedContent" not in route.info.generation_methods:
            raise InvalidRequest(f"models/{route.info.id} does not make embeddings; it "
                                 f"supports {', '.join(route.info.generation_methods)}.")
        upstream_request = replace(request, model=route.info.id)

        async def attempt(option: Attempt) -> EmbedOutcome:
            provider = option.candidate.provider
            if not isinstance(provider, Embeds):
                raise Skip(InvalidRequest(
                    f"provider {option.candidate.provider_name} cannot make embeddings"))
            response = await provider.embed(upstream_request, option.target)
            return EmbedOutcome(response, _served_by(option))

        outcome = await self._run(route, attempt, strict=False, traced="embeddings")
        self._metrics.usage(route.info.id, Usage(prompt_tokens=outcome.response.prompt_tokens))
        return outcome

    async def images(self, request: ImageRequest) -> ImageOutcome:
        """Pictures from the first candidate with an images endpoint (OpenAI callers'
        `/v1/images/*`); the same failover as a generation."""
        route = self._router.resolve(request.model)
        if route is None:
            raise NotFound(f"The model `{request.model}` does not exist.")
        if image_output_mode(route.info) is None:
            raise InvalidRequest(f"The model `{route.info.id}` does not generate images. "
                                 + _able(self._image_models()),
                                 violations={"model": "not an image model"})
        upstream_request = replace(request, model=route.info.id)

        async def attempt(option: Attempt) -> ImageOutcome:
            provider = option.candidate.provider
            if not isinstance(provider, MakesImages):
                raise Skip(InvalidRequest(
                    f"provider {option.candidate.provider_name} has no images endpoint"))
            response = await provider.make_images(upstream_request, option.target)
            return ImageOutcome(response, _served_by(option))

        outcome = await self._run(route, attempt, strict=False)
        self._metrics.usage(route.info.id, outcome.response.usage)
        return outcome

    async def _drawn(
        self, call: Call, route: ModelRoute, option: Attempt
    ) -> tuple[GenerateResponse, tuple[str, ...]]:
        """A generation on an image model, met by the upstream's images endpoint; and the
        caller's fields it dropped, as the translation policy allows."""
        try:
            request = call.request()
            check_request(request, route.info, call.words)
            dropped = _untranslated(request, route, _policy(call, route))
            drawing = image_request_for(request, route.info, call.dialect)
        except RequestRejected as exc:
            raise Skip(exc) from exc
        provider = cast(MakesImages, option.candidate.provider)
        drawn = await _translating(provider.make_images(drawing, option.target))
        return as_generate_response(drawn, option.target.model_version), dropped

    async def _sandboxed(
        self, call: Call, route: ModelRoute, option: Attempt, request: GenerateRequest
    ) -> GenerateResponse:
        """Code execution on an upstream that runs no code: the gateway's sandbox runs the
        model's code, when the operator enabled it; refused otherwise."""
        if self._sandbox is None:
            raise Skip(call.words(CodeExecutionUnsupported(route.info.id,
                                                           tuple(self._code_models()))))
        provider = option.candidate.provider

        async def generate(asking: GenerateRequest) -> GenerateResponse:
            return await self._sent(call, route, option, asking,
                                    lambda: provider.generate(asking, option.target))

        return await emulated(request, generate, self._sandbox)

    def image_output(self, name: str) -> str | None:
        """"native" or None: whether the model draws (for the models listing)."""
        route = self._router.resolve(name)
        return image_output_mode(route.info) if route else None

    def code_execution_mode(self, name: str) -> str | None:
        """"native", "emulated" or None: how the model runs code (`tool_support`)."""
        route = self._router.resolve(name)
        if route is None:
            return None
        support = best_support(code_execution_support, route, self._tools)
        return None if support is None else support.value

    def sandbox_reserve(self, name: str) -> float:
        """The most sandbox seconds one answer of the model may use: every run it may ask
        for, each to its wall-clock limit; 0 where the sandbox would not run its code."""
        if self._sandbox is None or self.code_execution_mode(name) != "emulated":
            return 0.0
        limits = self._sandbox.settings
        return limits.max_runs * limits.wall_seconds

    def _code_models(self) -> list[str]:
        return [r.info.id for r in self._router.routes()
                if best_support(code_execution_support, r, self._tools) is not None]

    def _image_models(self) -> list[str]:
        return [r.info.id for r in self._router.routes() if image_output_mode(r.info)]

    def _route(self, call: Call, *, counting: bool = False) -> ModelRoute:
        route = call.route or self._router.resolve(call.model)
        if route is None:
            raise NotFound(f"models/{call.model} is not found.")
        if "generateContent" not in route.info.generation_methods:
            raise InvalidRequest(f"models/{route.info.id} does not generate content; it "
                                 f"supports {', '.join(route.info.generation_methods)}.")
        forwarders = (_count_forwarding(call, c.provider) if counting
                      else _forwarding(call, c.provider, self._forwards)[0]
                      for c in route.candidates)
        if all(forwarder is None for forwarder in forwarders):
            call.request()  # nothing will forward the bytes: refuse a bad request up front
        return route

    async def _run(
        self, route: ModelRoute, attempt: Callable[[Attempt], Awaitable[T]], *, strict: bool,
        traced: Call | str | None = None,
    ) -> T:
        """`traced`: the generation's call, or the operation's name, when its attempts are
        traced (a token count is not a generation, and is not)."""
        plan = self._planner.plan(route.candidates, route.info.id, strict=strict)
        if self._tracer is not None and traced is not None:
            attempt = self._traced(attempt, traced)
        started = time.perf_counter()
        try:
            return await self._failover.run(
                plan.attempts, attempt, left_out=plan.left_out,
                on_failure=lambda option, exc: self._metrics.upstream_error(
                    option.candidate.provider_name, exc.failure_class.value
                ),
            )
        finally:
            self._metrics.waited_upstream(time.perf_counter() - started)

    def _traced(
        self, attempt: Callable[[Attempt], Awaitable[T]], traced: Call | str
    ) -> Callable[[Attempt], Awaitable[T]]:
        assert self._tracer is not None
        if isinstance(traced, str):
            return self._tracer.attempts(attempt, operation=traced)
        return self._tracer.attempts(
            attempt, operation=operation_name(traced.dialect, embedding=False),
            content=traced.request)

    def _translated(
        self, call: Call, route: ModelRoute
    ) -> tuple[GenerateRequest, tuple[str, ...]]:
        """The canonical request for a translating attempt, checked and with model defaults.
        A refusal here concerns this attempt only: another upstream may carry the request."""
        try:
            request = call.request()
            if call.dialect != "gemini":  # Gemini's own callers hear Google's refusal
                request = levels_as_budget(request, route.info)
            if call.dialect == "anthropic":
                request = efforts_as_offered_levels(request, route.info)
                if _policy(call, route) != "strict":  # strict hears the refusal instead
                    request = adaptive_as_no_thinking(request, route.info)
            if call.dialect == "responses":
                request = summary_without_thinking(request, route.info)
            check_request(request, route.info, call.words)
            wants_images = "IMAGE" in request.response_modalities or request.image_shape
            if wants_images and image_output_mode(route.info) is None:
                raise call.words(ImageOutputUnsupported(route.info.id,
                                                        tuple(self._image_models())))
            dropped = _untranslated(request, route, _policy(call, route))
        except RequestRejected as exc:
            raise Skip(exc) from exc
        prepared = with_model_defaults(request, route.info)
        return replace(prepared, model=route.info.id), dropped

    async def _sent(
        self, call: Call, route: ModelRoute, option: Attempt, request: GenerateRequest,
        send: Callable[[], Awaitable[R]],
    ) -> R:
        """`send()` to a translating upstream, with the model's context window checked: before
        sending when the prompt may not fit, and after the upstream refused it; a prompt over
        the window is refused as the caller's dialect says it (`context_window`)."""
        provider, target = option.candidate.provider, option.target
        refusal = await refusal_before_sending(provider, request, target, route.info)
        if refusal is None:
            try:
                return await _translating(send())
            except UpstreamError as exc:
                refusal = await refusal_after_failure(exc, provider, request, target, route.info)
                if refusal is None:
                    raise
        raise call.words(refusal)

    def _url_context_step(self) -> UrlContextStep | None:
        reader = self._url_reader
        return None if reader is None else UrlContextStep(reader)

    async def _url_context_and_maps(
        self, call: Call, route: ModelRoute, option: Attempt, request: GenerateRequest,
        pages: UrlContextStep | None,
    ) -> tuple[GenerateRequest, UrlContextRead | None]:
        """Before a translated attempt, two built-in tools of Gemini's: Google Maps grounding
        goes to Google or is refused; URL context goes to an upstream that reads URLs, or the
        gateway reads them for it (`url_context_step`)."""
        provider = option.candidate.provider
        if request.google_maps and self._support(google_maps_support, provider, route) is None:
            raise Skip(call.words(self._tool_unavailable(route, "google_maps")))
        if not request.url_context:
            return request, None
        support = self._support(url_context_support, provider, route)
        if support is ToolSupport.NATIVE:
            return request, None
        if support is None or pages is None:
            raise Skip(call.words(self._tool_unavailable(route, "url_context")))
        return await pages.prepared(request)

    def _support(self, support: SupportOf, provider: object, route: ModelRoute
                 ) -> ToolSupport | None:
        return support(provider, route, self._tools)

    def _tool_unavailable(self, route: ModelRoute, tool: BuiltinTool) -> ToolUnavailable:
        support = google_maps_support if tool == "google_maps" else url_context_support
        able = tuple(other.info.id for other in self._router.routes()
                     if best_support(support, other, self._tools) is not None)
        return ToolUnavailable(route.info.id, tool, able)

    def batch_request(self, call: Call) -> tuple[GenerateRequest, tuple[str, ...]]:
        """The canonical request, and what its translation drops, that a translating
        upstream's own batch API is sent for `call` — checked as a live attempt checks it,
        its refusal raised as the caller's dialect says it (a batch has no other attempt)."""
        route = self._route(call)
        try:
            return self._translated(call, route)
        except Skip as skip:
            raise skip.reason from None

    def check_translatable(self, call: Call) -> None:
        """Refuse now what no upstream of the model could run once translated: a web search
        where none of them searches (a background response is translated, and would
        otherwise be queued only to fail)."""
        route = self._route(call)
        search = call.request().web_search
        if search is not None and not any(
                self._grounds(route, candidate.provider) for candidate in route.candidates):
            raise self._no_web_search(route, call, search)

    def _grounds(self, route: ModelRoute, provider: object) -> str | None:
        """How a web search reaches the model through `provider`: "native" (its upstream
        searches), "emulate" (the gateway's search backend), or None (it cannot)."""
        support = google_search_support(provider, route, self._tools)  # as GET models says
        return None if support is None else {ToolSupport.NATIVE: "native",
                                             ToolSupport.EMULATED: "emulate"}[support]

    async def _searched(
        self, call: Call, route: ModelRoute, option: Attempt, request: GenerateRequest,
        dropped: tuple[str, ...],
    ) -> tuple[GenerateRequest, SearchRun | None, tuple[str, ...]]:
        """The request as the attempt's upstream gets it when it asks for a web search: as it
        is for an upstream that searches; with the sources of the gateway's own search
        otherwise (one search per call, whatever the attempts; the queries written by the
        model where it can call tools); refused where neither serves the model, or, under a
        lenient policy, sent without it and reported."""
        search = request.web_search
        provider = option.candidate.provider
        if search is None:
            return request, None, dropped
        how = self._grounds(route, provider)
        if how == "native":
            return request, None, dropped
        if how == "emulate" and self._search is not None:
            if call.search_run is None:
                call.search_run = SearchRun(self._search)
            # The bundled 135M model writes no usable query: the question is the query.
            plan = None if isinstance(provider, LocalProvider) else (
                lambda planning: provider.generate(planning, option.target))
            prepared = await call.search_run.prepared(request, plan)
            failed = (search.path,) if call.search_run.failed and search.path else ()
            return prepared, call.search_run, dropped + failed
        if search.path and _policy(call, route) == "lenient":  # as any field it cannot carry
            return replace(request, web_search=None), None, (*dropped, search.path)
        raise Skip(self._no_web_search(route, call, search))

    def _no_web_search(self, route: ModelRoute, call: Call,
                       search: WebSearchTool) -> InvalidRequest:
        """The caller hears which models here can search, in its own dialect."""
        able = [other.info.id for other in self._router.routes()
                if any(self._grounds(other, c.provider) for c in other.candidates)]
        if call.dialect == "gemini":
            return search_refusal(route.info.id, search.path, route.grounding, able)
        where = (f"Models that have it here: {', '.join(able)}." if able
                 else "No model here has it.")
        return InvalidRequest(
            f"The built-in tool 'web_search' is not available on models/{route.info.id}: "
            "none of its upstreams runs a web search (Gemini and Anthropic models do). "
            + where, violations={"tools": "web_search is not available on this model"})

    async def _forwarded(
        self, call: Call, route: ModelRoute, option: Attempt, send: Callable[[], Awaitable[R]]
    ) -> R:
        """`send()` the caller's own bytes. The upstream speaks the caller's dialect, so its
        refusal is relayed as it is (Google's and Anthropic's context-length errors are their
        dialects' own) — unless an OpenAI-compatible server gave only a status for a prompt
        that the provider's exact count puts over the model's window (vLLM says that only in
        words, without OpenAI's code): then the caller hears OpenAI's context-length error."""
        try:
            return await send()
        except UpstreamError as exc:
            if (call.dialect != "openai" or exc.prompt_too_long
                    or exc.failure_class is not FailureClass.CALLER_FAULT):
                raise
            try:
                request = call.request()
            except RequestRejected:
                raise exc from None
            refusal = await refusal_after_failure(exc, option.candidate.provider, request,
                                                  option.target, route.info)
            if refusal is None:
                raise
        raise call.words(refusal)

    async def _relay(
        self, route: ModelRoute, option: Attempt, first: StreamEvent,
        events: AsyncGenerator[StreamEvent, None], usage: StreamUsage,
    ) -> AsyncIterator[StreamEvent]:
        waited = 0.0  # on the upstream's next event, for the overhead histogram
        try:
            usage.saw_event(first)
            yield first
            asked = time.perf_counter()
            async for event in events:
                waited += time.perf_counter() - asked
                usage.saw_event(event)  # before it goes on: the consumer reads it at the end
                yield event
                asked = time.perf_counter()
        except UpstreamError as exc:
            self._metrics.upstream_error(option.candidate.provider_name, exc.failure_class.value)
            raise
        finally:
            self._metrics.waited_upstream(waited)
            await events.aclose()  # closes the upstream response when the caller goes away
            if usage.usage is not None:  # recorded once, whether the stream ended well or not
                self._metrics.usage(route.info.id, usage.usage)

    async def _relay_raw(
        self, route: ModelRoute, option: Attempt, first: RawChunk,
        chunks: AsyncGenerator[RawChunk, None], usage: StreamUsage,
    ) -> AsyncIterator[RawChunk]:
        usage.saw(first.usage)
        waited = 0.0
        try:
            yield first
            asked = time.perf_counter()
            async for chunk in chunks:
                waited += time.perf_counter() - asked
                usage.saw(chunk.usage)
                if chunk.error is not None:  # the upstream failed in-band; the caller sees it
                    self._metrics.upstream_error(
                        option.candidate.provider_name, chunk.error.failure_class.value
                    )
                yield chunk
                asked = time.perf_counter()
        except UpstreamError as exc:
            self._metrics.upstream_error(option.candidate.provider_name, exc.failure_class.value)
            raise
        finally:
            self._metrics.waited_upstream(waited)
            await chunks.aclose()
            if usage.usage is not None:
                self._metrics.usage(route.info.id, usage.usage)


def _served_by(option: Attempt) -> tuple[str, str]:
    return option.candidate.provider_name, option.candidate.upstream_model


def _forwarding(
    call: Call, provider: object, forwards: ForwardedDialects
) -> tuple[ForwardsRaw | None, RawCall | None]:
    """The provider as a forwarder of this call's own bytes, when it speaks the call's
    dialect; (None, None) when the call must be translated instead."""
    if call.raw is not None and call.dialect in forwards.of(type(provider)):
        return cast(ForwardsRaw, provider), call.raw
    return None, None


def _count_forwarding(call: Call, provider: object) -> ForwardsCount | None:
    """The provider as a forwarder of this count request's own bytes, when it counts in the
    call's dialect."""
    if call.raw is not None and isinstance(provider, ForwardsCount) \
            and provider.dialect == call.dialect:
        return provider
    return None


def _no_exact_count(model: str, provider: str) -> InvalidRequest:
    """Counting where no upstream can count exactly is refused: an estimate passed off as a
    count would mislead callers who size requests by it."""
    return InvalidRequest(
        f"Token counting is not available for {model}: provider {provider} gives no exact "
        "count (it declares no tokenize endpoint), and the gateway does not estimate one. An "
        f"operator can enable it with `tokenize_endpoint: true` on provider {provider}, when "
        "its server offers vLLM's POST /tokenize.")


class ForwardedDialects:
    """The dialects each provider class forwards raw (its `dialect`, or `forwarded_dialects`
    when it forwards more than one), decided once per class: an isinstance check against a
    runtime-checkable Protocol walks the protocol's attributes each time, and it was the
    largest single cost of a pass-through request. Kept by the gateway that asks rather than
    by the module, so it lives and dies with that app."""

    def __init__(self) -> None:
        self._of: dict[type, tuple[str, ...]] = {}

    def of(self, kind: type) -> tuple[str, ...]:
        known = self._of.get(kind)
        if known is None:
            known = self._of[kind] = _forwarded_dialects(kind)
        return known


def _forwarded_dialects(kind: type) -> tuple[str, ...]:
    dialect = getattr(kind, "dialect", None)
    dialects = getattr(kind, "forwarded_dialects", (dialect,))
    forwards = all(callable(getattr(kind, name, None)) for name in ("forward", "forward_stream"))
    return tuple(d for d in dialects if isinstance(d, str)) if forwards else ()


async def _first(stream: AsyncGenerator[E, None]) -> E:
    """The first item, or the failure that came instead (closing the stream either way), so
    that failover can still move on: nothing has reached the caller yet."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        await stream.aclose()
        raise InternalError("the upstream stream ended before it started") from None
    except BaseException:
        await stream.aclose()
        raise


async def _translating(pending: Awaitable[R]) -> R:
    """Awaits a provider call; a refusal raised while translating (before anything was sent)
    concerns this upstream only, so it becomes a Skip and the next candidate is tried."""
    try:
        return await pending
    except RequestRejected as exc:
        raise Skip(exc) from exc


def _draws(route: ModelRoute, provider: object) -> bool:
    """The model makes images, and this upstream's images endpoint is how."""
    return image_output_mode(route.info) is not None and isinstance(provider, MakesImages)


def _able(models: list[str]) -> str:
    return (f"Models that generate images here: {', '.join(models)}." if models
            else "No model here generates images.")


def _policy(call: Call, route: ModelRoute) -> str:
    return call.translation or route.translation


def _untranslated(
    request: GenerateRequest, route: ModelRoute, policy: str
) -> tuple[str, ...]:
    """Refuse caller fields no translating upstream can carry, as the translation policy
    says; return those dropped with a report."""
    refused = [
        u for u in request.untranslated
        if policy == "strict" or (policy == "default" and not u.droppable)
    ]
    if refused:
        lines = [f"{u.path} is not supported by models/{route.info.id}: {u.reason}"
                 for u in refused]
        raise InvalidRequest("\n".join(lines), violations={u.path: u.reason for u in refused})
    return tuple(u.path for u in request.untranslated)


def dropped_report(
    request: GenerateRequest, caller: tuple[str, ...], upstream: tuple[str, ...]
) -> Dropped:
    """Upstream codecs report "path: reason"; the caller hears the paths of what *it* sent
    (`request` is the call as decoded, before model defaults): a parameter the gateway filled
    in from the model's defaults is not the caller's to hear about."""
    paths = (entry.partition(":")[0].strip() for entry in upstream)
    sent = request.params
    canonical = tuple(
        path for path in paths
        if not (path.startswith("params.") and getattr(sent, path[7:], 0) is None)
    )
    return Dropped(caller, canonical)
