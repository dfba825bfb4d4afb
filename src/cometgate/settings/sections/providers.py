"""Parsers for the `providers` section of the YAML config: one per provider kind, with errors
that name the offending key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cometgate.providers.timeouts import Timeouts
from cometgate.settings.fields import ConfigError, Fields, Secret, secret
from cometgate.settings.tree import (
    AnthropicProviderSettings,
    GeminiProviderSettings,
    LocalEmbeddingProviderSettings,
    LocalProviderSettings,
    OpenAIProviderSettings,
    ProviderSettings,
)


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


_REMOTE_KEYS = {"kind", "base_url", "api_key", "api_keys", "timeouts"}


def provider(name: str, data: Mapping[str, Any], env: Mapping[str, str]) -> ProviderSettings:
    where = f"providers.{name}"
    kind = data.get("kind") if isinstance(data, Mapping) else None
    parser = _PARSERS.get(str(kind))
    if parser is None:
        raise ConfigError(f"{where}.kind must be one of: {', '.join(_PARSERS)}")
    return parser(name, where, data, env)


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
    )


def _local_embedding(
    name: str, where: str, data: Mapping[str, Any], env: Mapping[str, str]
) -> ProviderSettings:
    f = Fields(where, data, {"kind", "threads"})
    threads = f.get("threads", int, 2)
    if threads < 1:
        raise ConfigError(f"{where}.threads must be at least 1")
    return LocalEmbeddingProviderSettings(name=name, threads=threads)


_PARSERS = {"local": _local, "local_embedding": _local_embedding, "openai": _openai,
            "gemini": _gemini, "anthropic": _anthropic}
