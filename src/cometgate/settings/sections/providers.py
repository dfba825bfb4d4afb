"""The provider kinds, each registered in one record (`PROVIDER_KINDS` at the end): the
`providers` section's parser for that `kind:`, what a model using it may promise, where its
builder is, and how telemetry names it. Adding a kind is adding its parser here, its builder
beside its provider's code, and one record.

The builder is named by module and function ("cometgate.providers.registry:build_gemini") and
imported only when a provider of that kind is built: reading the settings never imports provider
code (httpx clients, numpy), and the settings package stays below the providers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cometgate.canonical import ThinkingStyle
from cometgate.providers.timeouts import Timeouts
from cometgate.settings.fields import ConfigError, Fields, Secret, secret
from cometgate.settings.tree import (
    BATCH_ROUTES,
    AnthropicProviderSettings,
    GeminiProviderSettings,
    LocalEmbeddingProviderSettings,
    LocalProviderSettings,
    ModelSettings,
    OpenAIProviderSettings,
    ProviderSettings,
)

# (name, "providers.NAME", its mapping, the environment) → its settings.
Parser = Callable[[str, str, Mapping[str, Any], Mapping[str, str]], ProviderSettings]
# (a model, one of its candidates' provider settings) → raises ConfigError on a promise the
# provider cannot keep: `GET models` reports a model's capabilities as facts.
Check = Callable[[ModelSettings, ProviderSettings], None]


@dataclass(frozen=True, slots=True)
class ProviderKind:
    name: str  # the `kind:` value
    settings: type[Any]  # the class its parser returns; how a parsed provider finds its kind
    parse: Parser
    builder: str  # "module:function", called with (its settings, the whole Settings)
    check: Check
    telemetry_system: str  # gen_ai.provider.name on spans


def _timeouts(where: str, data: Mapping[str, Any] | None) -> Timeouts:
    f = Fields(where, data or {}, {"connect", "first_byte", "idle", "total",
                                   "max_answer_bytes", "max_event_bytes"})
    base = Timeouts()
    try:
        return Timeouts(
            connect=f.get("connect", float, base.connect),
            first_byte=f.get("first_byte", float, base.first_byte),
            idle=f.get("idle", float, base.idle),
            total=f.get("total", float, base.total),
            max_answer_bytes=f.get("max_answer_bytes", int, base.max_answer_bytes),
            max_event_bytes=f.get("max_event_bytes", int, base.max_event_bytes),
        )
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _api_keys(where: str, data: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Secret, ...]:
    """`api_key: env:X` or `api_keys: [env:X, env:Y]` (several credentials, rotated)."""
    if "api_key" in data and "api_keys" in data:
        raise ConfigError(f"{where}: give api_key or api_keys, not both")
    if data.get("api_key") is not None:
        return (secret(f"{where}.api_key", data["api_key"], env),)
    keys = data.get("api_keys") or []
    if not isinstance(keys, list):
        raise ConfigError(f"{where}.api_keys must be a list")
    return tuple(secret(f"{where}.api_keys[{i}]", v, env) for i, v in enumerate(keys))


_REMOTE_KEYS = {"kind", "base_url", "api_key", "api_keys", "timeouts", "batch"}
# The kinds whose upstream has a batch API of its own (Gemini's batchGenerateContent, OpenAI's
# /v1/batches, Anthropic's /v1/messages/batches), so that `batch: upstream` means something.
BATCH_API_KINDS = ("gemini", "openai", "anthropic")


def _batch_route(f: Fields, where: str) -> str:
    route = f.data.get("batch", "gateway")
    if route not in BATCH_ROUTES:
        raise ConfigError(f"{where}.batch must be gateway (the gateway's own workers run "
                          "its batches) or upstream (its own batch API does), not "
                          f"{route!r}")
    return str(route)


def provider(name: str, data: Mapping[str, Any], env: Mapping[str, str],
             kinds: Mapping[str, ProviderKind]) -> ProviderSettings:
    where = f"providers.{name}"
    kind = kinds.get(str(data.get("kind"))) if isinstance(data, Mapping) else None
    if kind is None:
        raise ConfigError(f"{where}.kind must be one of: {', '.join(kinds)}")
    if "batch" in data and kind.name not in BATCH_API_KINDS:
        raise ConfigError(f"{where}.batch: a {kind.name} provider has no batch API to hand "
                          "batches to; only gemini, openai and anthropic providers take "
                          "batch: upstream (its batches run on the gateway's own workers)")
    return kind.parse(name, where, data, env)


def kind_of(spec: ProviderSettings, kinds: Mapping[str, ProviderKind]) -> ProviderKind:
    """The record that parsed `spec` (by its settings class)."""
    found = next((kind for kind in kinds.values() if type(spec) is kind.settings), None)
    if found is None:
        raise LookupError(f"providers.{spec.name}: no registered kind parses into "
                          f"{type(spec).__name__}")
    return found


def _local(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, {"kind", "model_path", "threads", "context_size", "host", "port",
                             "timeouts", "repeat_penalty"})
    path = f.get("model_path", str, "bundled")
    repeat_penalty = f.get("repeat_penalty", float, 1.0)
    if not 0 < repeat_penalty <= 2:
        raise ConfigError(f"{where}.repeat_penalty must be above 0 and at most 2")
    return LocalProviderSettings(
        name=name,
        model_path=None if path == "bundled" else Path(path).expanduser(),
        threads=f.get("threads", int, 2),
        context_size=f.get("context_size", int, 8192),
        host=f.get("host", str, "127.0.0.1"),
        port=f.get("port", int, 0),
        timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        repeat_penalty=repeat_penalty,
    )


def _openai(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, _REMOTE_KEYS | {"accepts_top_k", "tokenize_endpoint",
                                            "supports_reasoning", "max_tokens_field",
                                            "strict_schemas", "responses_api",
                                            "web_search"})
    max_tokens_field = f.get("max_tokens_field", str, "max_tokens")
    if max_tokens_field not in ("max_tokens", "max_completion_tokens"):
        raise ConfigError(f"{where}.max_tokens_field must be max_tokens or max_completion_tokens")
    return OpenAIProviderSettings(
        name=name,
        base_url=f.require("base_url", str).rstrip("/"),
        api_keys=_api_keys(where, data, env),
        accepts_top_k=f.get("accepts_top_k", bool, False),
        tokenize_endpoint=f.get("tokenize_endpoint", bool, False),
        responses_api=f.get("responses_api", bool, False),
        supports_reasoning=f.get("supports_reasoning", bool, False),
        max_tokens_field=max_tokens_field,
        strict_schemas=f.get("strict_schemas", bool, True),
        web_search=f.get("web_search", bool, False),
        timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        batch=_batch_route(f, where),
    )


def _gemini(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, _REMOTE_KEYS)
    base = GeminiProviderSettings(name)
    return GeminiProviderSettings(
        name=name,
        base_url=f.get("base_url", str, base.base_url).rstrip("/"),
        api_keys=_api_keys(where, data, env),
        timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        batch=_batch_route(f, where),
    )


def _anthropic(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, _REMOTE_KEYS | {"version", "default_max_tokens"})
    base = AnthropicProviderSettings(name)
    return AnthropicProviderSettings(
        name=name,
        base_url=f.get("base_url", str, base.base_url).rstrip("/"),
        api_keys=_api_keys(where, data, env),
        version=f.get("version", str, base.version),
        default_max_tokens=f.positive("default_max_tokens", int, base.default_max_tokens),
        timeouts=_timeouts(f"{where}.timeouts", f.get("timeouts", dict)),
        batch=_batch_route(f, where),
    )


def _local_embedding(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, {"kind", "threads"})
    threads = f.get("threads", int, 2)
    if threads < 1:
        raise ConfigError(f"{where}.threads must be at least 1")
    return LocalEmbeddingProviderSettings(name=name, threads=threads)


def _any_model(spec: ModelSettings, found: ProviderSettings) -> None:
    """A kind whose upstream is asked, not assumed: it refuses what it cannot do itself."""


def _check_local(spec: ModelSettings, found: ProviderSettings) -> None:
    if spec.info.thinking is not ThinkingStyle.NONE:
        raise ConfigError(f"models.{spec.info.id}.thinking: the local worker has no reasoning "
                          "support")


def _check_openai(spec: ModelSettings, found: ProviderSettings) -> None:
    if not isinstance(found, OpenAIProviderSettings):
        return
    where = f"models.{spec.info.id}"
    if spec.info.thinking is not ThinkingStyle.NONE and not found.supports_reasoning:
        raise ConfigError(f"{where}.thinking needs providers.{found.name}."
                          "supports_reasoning: true")
    if spec.info.top_k is not None and not found.accepts_top_k:
        raise ConfigError(f"{where}.top_k is set, but providers.{found.name} does not "
                          "accept top_k (set accepts_top_k: true if it does)")


_BUILDERS = "cometgate.providers.registry"

# In this order in the error that lists the kinds.
PROVIDER_KINDS: Mapping[str, ProviderKind] = MappingProxyType({kind.name: kind for kind in (
    ProviderKind("local", LocalProviderSettings, _local, f"{_BUILDERS}:build_local",
                 _check_local, "cometgate.local"),
    ProviderKind("local_embedding", LocalEmbeddingProviderSettings, _local_embedding,
                 f"{_BUILDERS}:build_local_embedding", _any_model, "cometgate.local"),
    ProviderKind("openai", OpenAIProviderSettings, _openai, f"{_BUILDERS}:build_openai",
                 _check_openai, "openai"),
    ProviderKind("gemini", GeminiProviderSettings, _gemini, f"{_BUILDERS}:build_gemini",
                 _any_model, "gcp.gemini"),
    ProviderKind("anthropic", AnthropicProviderSettings, _anthropic,
                 f"{_BUILDERS}:build_anthropic", _any_model, "anthropic"),
)})
