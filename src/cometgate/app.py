"""create_app(settings): the object graph of one gateway, wired explicitly.

    settings ─► providers (HTTP pools, supervised local workers) ─► Router ─► Gateway
             ─► Database ─► KeyRepository ─► KeyAuthenticator
    Gateway + KeyAuthenticator + Meter ─► Entrance ─► RequestFrame (api/frame)
             ─► Gemini, OpenAI, Responses and Anthropic routes (path tables binding a codec)
             ─► Starlette app (+ request-context layer)

The lifespan migrates the database and starts supervised upstreams before the first request,
and closes everything on shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from cometgate.api.admin_routes import AdminApi, admin_routes
from cometgate.api.anthropic_routes import AnthropicApi
from cometgate.api.auth import KeyAuthenticator
from cometgate.api.background_responses import BackgroundResponses
from cometgate.api.balance_routes import balance_routes, balance_state
from cometgate.api.batch_files import BatchFiles
from cometgate.api.batch_routes import BatchApi
from cometgate.api.batch_runner import BatchRunner
from cometgate.api.body import BodyPace
from cometgate.api.cache_routes import CACHE_SWEEP_SECONDS, CacheApi, CacheSweep
from cometgate.api.cached_prefix import CachedPrefixes
from cometgate.api.entrance import Entrance
from cometgate.api.error_handlers import gateway_error, http_error, unexpected_error
from cometgate.api.file_references import FileLinker
from cometgate.api.file_routes import FilesApi
from cometgate.api.gemini_routes import GeminiApi
from cometgate.api.health_routes import health_routes
from cometgate.api.middleware import RequestContextMiddleware
from cometgate.api.model_routes import shared_model_routes
from cometgate.api.openai_images import OpenAIImagesApi
from cometgate.api.openai_routes import OpenAIApi
from cometgate.api.responses_routes import ResponsesApi
from cometgate.api.route_index import IndexedRouter
from cometgate.api.stored_responses import StoredResponses
from cometgate.api.upstream_batches import UpstreamBatches
from cometgate.console.routes import console_routes
from cometgate.dialects.anthropic.web_search import DEFAULT_USES as ANTHROPIC_SEARCHES
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import GatewayError
from cometgate.gateway_secret import gateway_secret
from cometgate.grounding.fetch import PageFetcher
from cometgate.grounding.search_backends import SearchBackend
from cometgate.limits import Limiter, create_keeper, create_limiter
from cometgate.limits.batch_holds import BatchHolds
from cometgate.limits.shared import SharedLimiter
from cometgate.metering import Meter
from cometgate.metrics import Metrics
from cometgate.pipeline import Gateway
from cometgate.pricing import PriceBook
from cometgate.providers.base import Provider, Supervised
from cometgate.providers.batch_apis import build_batch_apis
from cometgate.providers.registry import build_providers
from cometgate.routing.failover import Failover
from cometgate.routing.health import Health
from cometgate.routing.plan import Candidate, Credential, Planner
from cometgate.routing.resolve import ModelRoute, Router
from cometgate.sandbox import BubblewrapSandbox
from cometgate.settings import ConfigError, Settings
from cometgate.storage.batch_upstream_jobs import UpstreamJobStore
from cometgate.storage.batches import BatchStore
from cometgate.storage.cached_contents import CachedContentStore
from cometgate.storage.conversation_sweep import ConversationSweep
from cometgate.storage.conversations import ConversationStore
from cometgate.storage.database import Database, create_database, migrate
from cometgate.storage.file_store import FileStore, choose_blobs
from cometgate.storage.file_store.sweep import FileSweep
from cometgate.storage.keys import KeyRecord, KeyRepository
from cometgate.storage.usage import UsageQueries
from cometgate.storage.usage_log import UsageLog
from cometgate.storage.usage_retention import UsageRetention
from cometgate.storage.usage_rollups import UsageRollups
from cometgate.storage.usage_writer import UsageWriter
from cometgate.tracing import Tracer
from cometgate.worker_role import WorkerRole


def create_app(
    settings: Settings, *, providers: Mapping[str, Provider] | None = None,
    tracer: Tracer | None = None, page_fetcher: PageFetcher | None = None,
    role: WorkerRole | None = None,
) -> Starlette:
    """`providers` replaces the ones the settings describe (tests plug fakes in here);
    `tracer` the one telemetry settings would build (None: off unless configured);
    `page_fetcher` the one `grounding.fetch` describes (tests plug in a resolver); `role`
    says what this process shares with its siblings under `serve --workers N` (None: alone)."""
    metrics = Metrics()
    upstreams = dict(providers) if providers is not None else build_providers(
        settings, shared_local=role.local_models if role else None)
    health = Health(settings.routing)
    search = SearchBackend(settings.search) if settings.search is not None else None
    tracer = tracer if tracer is not None else build_tracer(settings)
    fetch = settings.fetch
    pages = page_fetcher or (PageFetcher(fetch) if fetch.enabled else None)
    gateway = Gateway(
        Router(model_routes(settings, upstreams)),
        metrics,
        planner=Planner(health),
        failover=Failover(settings.routing, health),
        search=search,
        tracer=tracer,
        url_reader=pages,
        sandbox=BubblewrapSandbox(settings.code_execution)
        if settings.code_execution.enabled else None,
    )
    database = create_database(settings.database_url)
    keys = KeyRepository(database)
    auth = KeyAuthenticator(keys, cache_seconds=settings.server.auth_cache_seconds)
    # Callers do not wait on commits (the journal makes records durable), so the writer can
    # wait a little to put many records in each commit.
    writer = UsageWriter(database, commit_budget=settings.usage.commit_budget_seconds)
    usage_log = UsageLog(writer, settings.data_dir / "usage-journal")
    usage = UsageQueries(database, before_read=usage_log.flush)
    rollups = UsageRollups(database, before_read=usage_log.flush)
    redis_url = settings.limits.redis_url
    lease_ttl = timedelta(seconds=settings.limits.lease_ttl_seconds)
    limiter: Limiter = (
        SharedLimiter(role.limiter_socket) if role is not None and role.limiter_socket
        else create_limiter(redis_url.value if redis_url else None, usage, lease_ttl=lease_ttl))
    holds = BatchHolds()
    meter = Meter(limiter, PriceBook(settings.models), usage_log,
                  keeper=create_keeper(limiter, lease_ttl),
                  max_candidates=settings.limits.max_candidates,
                  searches_reserved=searches_reserved(settings),
                  enabled=settings.server.accounting, tracer=tracer,
                  holds=holds)
    entrance = Entrance(gateway, auth, meter, settings.server.max_body_bytes,
                        BodyPace(settings.server.body_timeout, settings.server.body_min_rate))
    files = file_store(settings, database)
    cache_store = CachedContentStore(database)
    caches = CacheApi(entrance, cache_store)
    cache_sweep = CacheSweep(caches, CACHE_SWEEP_SECONDS)
    gemini = GeminiApi(entrance, FileLinker(files, settings.files.max_inline_bytes),
                       CachedPrefixes(cache_store))
    openai = OpenAIApi(entrance)
    anthropic = AnthropicApi(entrance)
    conversations = conversation_store(settings, database)
    stored_responses = StoredResponses(entrance, conversations)
    background = BackgroundResponses(entrance, stored_responses)
    responses = ResponsesApi(entrance, stored_responses, StateSeal(gateway_secret(settings)),
                             background)
    batch_store = BatchStore(database)
    batch_runner = BatchRunner(batch_store, entrance, keys, settings.batches,
                               {m.info.id: m.candidates[0].provider for m in settings.models},
                               holds, ready=lambda name: upstream_ready(upstreams, name))
    upstream_batches = UpstreamBatches(
        UpstreamJobStore(database), entrance, keys, settings.batches,
        build_batch_apis(settings), wake_workers=batch_runner.wake)
    batches = BatchApi(entrance, batch_store, batch_runner, settings.batches,
                       BatchFiles(files, batch_store), holds, upstream_batches)
    sweep = ConversationSweep(conversations, settings.conversations.sweep_interval_seconds)
    file_sweep = FileSweep(files, settings.files.sweep_interval_seconds)
    retention = usage_retention(settings, database)

    async def limit_state(key: KeyRecord) -> dict[str, object]:
        return balance_state(await meter.state(key))

    def readiness() -> dict[str, bool]:
        return {n: p.is_ready() for n, p in upstreams.items() if isinstance(p, Supervised)}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await migrate(database)
        writer.start()
        await usage_log.recover(database)
        if role is None or role.recovers_background:
            await background.recover()  # what was in flight when the gateway stopped
        if role is None or role.sweeps:
            sweep.start()
            file_sweep.start()
            retention.start()
            cache_sweep.start()
        for provider in upstreams.values():
            if isinstance(provider, Supervised):
                await provider.start()
        # After the supervised upstreams: a batch request claimed now finds them started.
        # Claims batch requests, this replica's and any dead one's.
        batch_runner.start(claims=role is None or role.claims_batches)
        if settings.batches.enabled and (role is None or role.claims_batches):
            upstream_batches.start()  # and polls the batches handed to upstreams
        try:
            yield
        finally:
            await background.aclose()
            await batch_runner.aclose()  # gives back what it was running, unrun
            await upstream_batches.aclose()
            await sweep.aclose()
            await file_sweep.aclose()
            await retention.aclose()
            await cache_sweep.aclose()
            for provider in upstreams.values():
                await provider.aclose()
            if search is not None:
                await search.aclose()
            if pages is not None:
                await pages.aclose()
            await usage_log.aclose()  # every journaled record committed
            await writer.aclose()
            await meter.aclose()
            await limiter.aclose()
            await database.aclose()
            if tracer is not None:
                tracer.shutdown()  # exports the spans and metrics still buffered

    app = Starlette(
        routes=[
            *health_routes(metrics, readiness, metrics_access=settings.server.metrics,
                           admit_admin=AdminApi(settings.admin_key, keys, usage).admit),
            *admin_routes(settings, keys, usage, [m.info.id for m in settings.models],
                          conversations),
            *console_routes(settings, database, rollups, health),
            *balance_routes(auth, limit_state, usage),  # before the catch-all model routes
            *FilesApi(entrance, files).routes(),
            *openai.routes(),
            *OpenAIImagesApi(entrance).routes(),
            *stored_responses.routes(),  # before the Responses routes' keeper-less 404
            *background.routes(),
            *responses.routes(),
            *anthropic.routes(),
            *batches.routes(),  # before the catch-all Gemini model routes
            *caches.routes(),
            *shared_model_routes(gemini, openai, anthropic),  # before Gemini's own /v1/models
            *gemini.routes(),
        ],
        middleware=[
            Middleware(
                RequestContextMiddleware, metrics=metrics, log_requests=settings.server.access_log
            )
        ],
        exception_handlers={
            GatewayError: gateway_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=lifespan,
    )
    # Before the first request builds the middleware stack around it: the same routes, tried
    # by index instead of one after another (see api/route_index).
    app.router = IndexedRouter(app.router.routes, lifespan=lifespan)
    app.state.usage_log = usage_log  # lets tests wait for records in flight
    app.state.usage_rollups = rollups  # what the console's Usage and Requests pages read
    app.state.background = background  # … and for background responses in flight
    app.state.batch_runner = batch_runner  # … and for batch requests
    app.state.files = files  # lets tests move a file past its expiry
    app.state.caches = caches  # … and sweep expired caches at once
    return app


def upstream_ready(upstreams: Mapping[str, Provider], name: str) -> bool:
    """Whether a provider can answer now: a supervised one once its process is ready."""
    provider = upstreams.get(name)
    return not isinstance(provider, Supervised) or provider.is_ready()


def searches_reserved(settings: Settings) -> int:
    """The most searches one answer can run: Anthropic's web search tool as the gateway sends
    it, or the gateway's own search backend's bound on queries."""
    backend = settings.search.max_queries if settings.search is not None else 0
    return max(ANTHROPIC_SEARCHES, backend)


def build_tracer(settings: Settings) -> Tracer | None:
    """OpenTelemetry only when an OTLP endpoint is configured: otherwise not even imported."""
    if not settings.telemetry.enabled:
        return None
    try:
        from cometgate import otel
    except ImportError as exc:
        raise ConfigError(
            "an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_*), but OpenTelemetry is not "
            "installed: install cometgate[telemetry]") from exc
    return otel.build_tracer(settings)


def usage_retention(settings: Settings, database: Database) -> UsageRetention:
    def days(value: float | None) -> timedelta | None:
        return timedelta(days=value) if value is not None else None

    return UsageRetention(database, records=days(settings.usage.retention_days),
                          hourly_rollups=days(settings.usage.hourly_rollup_retention_days),
                          interval_seconds=settings.usage.sweep_interval_seconds)


def conversation_store(settings: Settings, database: Database) -> ConversationStore | None:
    """The store of stateful APIs' conversations; None when the operator turned it off."""
    if not settings.conversations.enabled:
        return None
    return ConversationStore(database,
                             retention=timedelta(days=settings.conversations.retention_days))


def file_store(settings: Settings, database: Database) -> FileStore:
    """The Files API's store: bytes where storage.files.store says (see choose_blobs)."""
    limits = settings.files
    return FileStore(database, choose_blobs(limits.store, database.engine, settings.data_dir),
                     ttl=timedelta(hours=limits.ttl_hours), max_file_bytes=limits.max_file_bytes,
                     max_key_bytes=limits.max_key_bytes)


def model_routes(settings: Settings, upstreams: Mapping[str, Provider]) -> list[ModelRoute]:
    """Each configured model with its candidates bound to provider objects and credentials."""
    # A kind whose settings hold no api_keys (the local ones) rotates no credentials; no list
    # of kinds here, so a new kind needs only its record.
    credentials = {
        spec.name: tuple(Credential(k.source, k.value) for k in getattr(spec, "api_keys", ()))
        for spec in settings.providers
    }
    return [
        ModelRoute(
            info=model.info,
            candidates=tuple(
                Candidate(
                    provider_name=c.provider,
                    provider=upstreams[c.provider],
                    upstream_model=c.upstream_model,
                    priority=c.priority,
                    weight=c.weight,
                    credentials=credentials.get(c.provider, ()),
                )
                for c in model.candidates
            ),
            translation=model.translation,
            grounding=model.grounding,
        )
        for model in settings.models
    ]
