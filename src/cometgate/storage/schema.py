"""The current shape of the database, as SQLAlchemy Core tables.

Queries use these tables. Migrations do not: each migration carries its own snapshot of the
DDL it ran, so that editing a table here can never change what an old migration does (a test
checks that the migrated database and these tables agree).

Portability invariant: only types and constructs that SQLite and PostgreSQL both accept; the
one dialect-specific spelling is the partial-index predicate, which SQLAlchemy renders for each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
)

NAME_MAX_LENGTH = 64
PREFIX_LENGTH = 11  # "cg-" + 8 characters of the random part
SHA256_HEX_LENGTH = 64


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive datetimes are refused on the way in, because their zone is a guess. SQLite stores
    timestamps as text without a zone, so values come back naive there and are marked UTC on
    the way out; PostgreSQL (`timestamptz`) returns aware values, which are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    # The primary key is what makes a migration's claim exclusive between processes.
    Column("name", String(200), primary_key=True),
    Column("applied_at", UtcDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX_LENGTH), nullable=False),
    Column("prefix", String(PREFIX_LENGTH), nullable=False),
    Column("key_hash", String(SHA256_HEX_LENGTH), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # Kept for a later batched "last seen" write; never written on the request path.
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # Overrides the model's translation policy for this key (default/strict/lenient).
    Column("translation", String(16), nullable=True),
    # What an operator sets per key (all optional; NULL means no limit / not set).
    Column("owner", String(200), nullable=True),
    Column("metadata_json", Text(), nullable=True),  # free-form JSON object
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("allowed_models_json", Text(), nullable=True),  # JSON list of names or glob patterns
    Column("allowed_ips_json", Text(), nullable=True),  # JSON list of CIDR ranges
    Column("rpm", Integer(), nullable=True),  # requests per minute
    Column("tpm", Integer(), nullable=True),  # tokens per minute
    Column("rpd", Integer(), nullable=True),  # requests per day
    Column("max_concurrent", Integer(), nullable=True),
    Column("budget_total_usd", Numeric(18, 6), nullable=True),
    Column("budget_period", String(8), nullable=True),  # "day" | "month"
    Column("budget_period_usd", Numeric(18, 6), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=True),
    # JSON list of billable request fields the key may send despite a budget or strict policy.
    Column("allowed_passthrough_json", Text(), nullable=True),
    # False: nothing this key sends is kept in stored_turns; NULL (older rows) means true.
    Column("store_conversations", Boolean(), nullable=True),
    Index("ix_api_keys_prefix", "prefix"),
)

# One row per request that reached the pipeline, written by the group-commit writer.
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, unique=True),
    Column("key_id", Integer, nullable=False),  # no FK: history outlives deleted keys
    Column("model", String(200), nullable=False),  # the alias the caller asked for
    Column("provider", String(200), nullable=True),  # who answered (NULL: nobody did)
    Column("upstream_model", String(200), nullable=True),
    Column("dialect", String(16), nullable=False),  # the caller's: gemini, openai, anthropic
    Column("stream", Boolean(), nullable=False),
    Column("status", Integer, nullable=False),  # HTTP status, or a broken stream's error code
    Column("failure_class", String(16), nullable=True),
    Column("prompt_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("thoughts_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cost_usd", Numeric(18, 9), nullable=False),
    Column("latency_ms", Float(), nullable=False),
    Column("ttfb_ms", Float(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("searches", Integer, nullable=False, server_default="0"),
    Column("fetched_pages", Integer, nullable=False, server_default="0"),
    Column("sandbox_seconds", Float(), nullable=False, server_default="0"),
    Column("images", Integer, nullable=False, server_default="0"),
    Column("batch_id", String(40), nullable=True),  # the batch it ran in; NULL: a live call
    # What translation could not carry (the x-cometgate-dropped paths, comma-separated).
    Column("dropped", Text(), nullable=True),
    Index("ix_usage_records_key_created", "key_id", "created_at"),
    Index("ix_usage_records_model_created", "model", "created_at"),
    # The requests page walks newest first by id, filtered: one index per filter it offers.
    Index("ix_usage_records_key_id", "key_id", "id"),
    Index("ix_usage_records_model_id", "model", "id"),
    Index("ix_usage_records_provider_id", "provider", "id"),
)


def _rollup_table(name: str) -> Table:
    """Sums of usage_records per time bucket (an hour, a UTC day), key, model and provider,
    kept by the record writer in the transaction that inserts the records themselves."""
    return Table(
        name,
        metadata,
        Column("bucket_start", UtcDateTime(), primary_key=True),
        Column("key_id", Integer, primary_key=True, autoincrement=False),
        Column("model", String(200), primary_key=True),
        # "" when nobody answered: a key column cannot be NULL (NULLs never conflict).
        Column("provider", String(200), primary_key=True),
        Column("requests", BigInteger, nullable=False),
        Column("errors", BigInteger, nullable=False),  # records with status >= 400
        Column("prompt_tokens", BigInteger, nullable=False),
        Column("output_tokens", BigInteger, nullable=False),
        Column("thoughts_tokens", BigInteger, nullable=False),
        Column("cached_tokens", BigInteger, nullable=False),
        # Billionths of a dollar: usage_records' precision, summed exactly on both backends
        # (SQLite keeps NUMERIC as a float, whose running sum would drift).
        Column("cost_nanos", BigInteger, nullable=False),
        Column("latency_ms_sum", Float(), nullable=False),
    )


usage_rollups_hour = _rollup_table("usage_rollups_hour")
usage_rollups_day = _rollup_table("usage_rollups_day")


# A Gemini batch (`batches/{id}`): its requests run by the gateway's own workers, whichever
# replica claims each one. Read only with the key that created it.
batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", Integer, nullable=False),  # no FK, as usage_records
    Column("model", String(200), nullable=False),  # the alias the caller asked for
    Column("display_name", String(512), nullable=True),
    Column("state", String(32), nullable=False),  # BATCH_STATE_*
    Column("input_file", String(200), nullable=True),  # files/… when the input was a file
    Column("output_file", String(200), nullable=True),  # files/… holding the results
    Column("client_ip", String(64), nullable=True),  # the creator's, for the key's IP rules
    Column("request_count", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False),  # unfinished by then: EXPIRED
    Index("ix_batches_key_created", "key_id", "created_at"),
    Index("ix_batches_state", "state"),
)

# One request of a batch. `state` moves pending → running (claimed by `owner` until
# `lease_until`) → succeeded | failed, or pending → cancelled; a lapsed lease makes a running
# item claimable again. `result` is the JSON the caller gets: {"response"} or {"error"}.
batch_items = Table(
    "batch_items",
    metadata,
    Column("batch_id", String(40), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("request", Text(), nullable=False),  # JSON: the GenerateContentRequest
    Column("metadata", Text(), nullable=True),  # JSON: the caller's metadata, or its key
    Column("state", String(16), nullable=False),
    Column("reserved_usd", Numeric(18, 9), nullable=False),  # its worst-case cost
    Column("owner", String(40), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("result", Text(), nullable=True),
    Index("ix_batch_items_state", "state", "lease_until"),
)


# A batch handed whole to an upstream's own batch API (its provider's `batch: upstream`):
# `state` moves submitting → running (once `upstream_id` is known) → done, or submitting →
# fallback (the upstream refused it for a transient reason: the gateway's workers run it).
# One replica at a time works on a job, while it holds `owner` until `lease_until`; `stop`
# (cancelled | expired) asks for the upstream job to be cancelled, `stop_sent` once it was.
batch_upstream_jobs = Table(
    "batch_upstream_jobs",
    metadata,
    Column("batch_id", String(40), primary_key=True),
    Column("provider", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # the provider's kind: its batch API
    Column("upstream_model", String(200), nullable=False),
    Column("upstream_id", String(300), nullable=True),  # batches/…, batch_…, msgbatch_…
    Column("state", String(16), nullable=False),
    Column("stop", String(16), nullable=True),
    Column("stop_sent", Boolean(), nullable=False),
    Column("owner", String(40), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("next_poll_at", UtcDateTime(), nullable=False),
    Column("note", Text(), nullable=True),  # why it fell back to the gateway's workers
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_batch_upstream_jobs_state", "state", "next_poll_at"),
)


# One turn of a stateful API, kept for a later turn to continue from: a Responses API response
# (`api` "responses"); Gemini's Interactions API stores its interactions here too. Read only
# with the key that created it; invisible once `expires_at` has passed, and purged after.
stored_turns = Table(
    "stored_turns",
    metadata,
    Column("id", String(80), primary_key=True),  # the id the caller sees ("resp_…")
    Column("api", String(16), nullable=False),
    Column("key_id", Integer, nullable=False),  # no FK, as usage_records; purged with the key
    Column("previous_id", String(80), nullable=True),  # the turn this one continues
    Column("model", String(200), nullable=False),  # the alias the caller asked for
    Column("status", String(16), nullable=False),
    Column("body", Text(), nullable=False),  # JSON: the object as the caller got it
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_stored_turns_key_created", "key_id", "created_at"),
    Index("ix_stored_turns_expires", "expires_at"),
)

# The input items of a turn, in the order the caller sent them (what the turn added to the
# conversation besides its output, which is in the turn's body).
stored_turn_items = Table(
    "stored_turn_items",
    metadata,
    Column("turn_id", String(80), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("item_id", String(80), nullable=False),
    Column("body", Text(), nullable=False),  # JSON: the item as listed by input_items
)

# Gemini Files API files (storage/file_store). A row exists from the upload's start: until
# it is finalized (state UPLOADING) it is reachable only through its upload id, and its
# `size_bytes` is the size the caller declared, counted against the key's storage.
gemini_files = Table(
    "gemini_files",
    metadata,
    Column("id", String(40), primary_key=True),  # "files/{id}" to the caller
    Column("key_id", Integer, nullable=False),  # no FK, as usage_records
    Column("display_name", Text(), nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("size_bytes", BigInteger(), nullable=False),
    Column("received_bytes", BigInteger(), nullable=False),
    Column("sha256", String(44), nullable=True),  # base64, as Google's sha256Hash
    Column("state", String(16), nullable=False),  # UPLOADING | PROCESSING | ACTIVE
    Column("source", String(16), nullable=False),  # UPLOADED, or GENERATED (a result file)
    Column("upload_id", String(64), nullable=True, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_gemini_files_key_created", "key_id", "created_at"),
    Index("ix_gemini_files_expires", "expires_at"),
)

# A file's bytes when they are kept in the database (storage.files.store), one row per
# received piece, `position` its offset in the file.
gemini_file_chunks = Table(
    "gemini_file_chunks",
    metadata,
    Column("file_id", String(40), primary_key=True),
    Column("position", BigInteger(), primary_key=True, autoincrement=False),
    Column("data", LargeBinary(), nullable=False),
)

# Where a gateway file was copied to a Gemini upstream's own Files API, per provider and
# credential (a digest of it), so that pass-through uploads it once.
gemini_upstream_files = Table(
    "gemini_upstream_files",
    metadata,
    Column("file_id", String(40), primary_key=True),
    Column("provider", String(200), primary_key=True),
    Column("credential", String(64), primary_key=True),
    Column("upstream_uri", Text(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# Gemini cachedContents: a prompt prefix a key stored for reuse with one model.
cached_contents = Table(
    "cached_contents",
    metadata,
    Column("id", String(80), primary_key=True),  # the id of "cachedContents/{id}"
    Column("key_id", Integer, nullable=False),  # no FK, as usage_records
    Column("model", String(200), nullable=False),  # the alias it is bound to
    Column("display_name", String(200), nullable=True),
    Column("body", Text(), nullable=False),  # JSON: contents, systemInstruction, tools, toolConfig
    Column("total_tokens", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_cached_contents_key_created", "key_id", "created_at"),
    Index("ix_cached_contents_expires", "expires_at"),
)

# The same prefix as a Gemini upstream's own cachedContents, one per provider and credential.
upstream_cached_contents = Table(
    "upstream_cached_contents",
    metadata,
    Column("cache_id", String(80), primary_key=True),
    Column("provider", String(200), primary_key=True),
    Column("credential", String(200), primary_key=True),  # its fingerprint and the model
    Column("upstream_name", String(300), nullable=False),
)

# A name identifies at most one active key; revoked keys keep their name so that history
# reads naturally, and the name can be reused for a replacement key.
_errors = usage_records.c.status >= 400
Index("ix_usage_records_errors", usage_records.c.id, sqlite_where=_errors,
      postgresql_where=_errors)

_active = api_keys.c.revoked_at.is_(None)
Index(
    "uq_api_keys_active_name",
    api_keys.c.name,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)
