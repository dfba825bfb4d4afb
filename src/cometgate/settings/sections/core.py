"""Parsers for the server, routing, limits, storage.conversations and models sections, and the
check that every model's providers exist and can keep its promises (each kind's own check, from
its record in providers.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from cometgate.canonical import ModelInfo, ThinkingStyle
from cometgate.settings.fields import ConfigError, Fields, Secret, secret
from cometgate.settings.sections.providers import ProviderKind, kind_of
from cometgate.settings.tree import (
    CandidateSettings,
    ConversationSettings,
    LimitsSettings,
    ModelSettings,
    PriceVersion,
    ProviderSettings,
    RoutingSettings,
    ServerSettings,
)

TRANSLATION_POLICIES = ("default", "strict", "lenient")
SINCE_FOREVER = datetime.min.replace(tzinfo=UTC)  # where an undated price version sorts
METRICS_ACCESS = ("admin", "open", "off")


def server(data: Mapping[str, Any]) -> ServerSettings:
    f = Fields("server", data, {"host", "port", "max_body_bytes", "auth_cache_seconds",
                                "access_log", "accounting", "max_header_bytes", "max_headers",
                                "header_timeout", "body_timeout", "body_min_rate",
                                "trusted_proxies", "metrics"})
    base = ServerSettings()
    # YAML reads a bare `off` as false.
    metrics = "off" if f.data.get("metrics") is False else f.get("metrics", str, base.metrics)
    if metrics not in METRICS_ACCESS:
        raise ConfigError(f"server.metrics must be one of {', '.join(METRICS_ACCESS)}")
    return ServerSettings(
        host=f.get("host", str, base.host),
        port=f.get("port", int, base.port),
        max_body_bytes=f.positive("max_body_bytes", int, base.max_body_bytes),
        auth_cache_seconds=f.positive("auth_cache_seconds", float, base.auth_cache_seconds),
        access_log=f.get("access_log", bool, base.access_log),
        accounting=f.get("accounting", bool, base.accounting),
        max_header_bytes=_above_zero(f, "max_header_bytes", int, base.max_header_bytes),
        max_headers=_above_zero(f, "max_headers", int, base.max_headers),
        header_timeout=_above_zero(f, "header_timeout", float, base.header_timeout),
        body_timeout=_above_zero(f, "body_timeout", float, base.body_timeout),
        body_min_rate=_above_zero(f, "body_min_rate", int, base.body_min_rate),
        trusted_proxies=_networks("server.trusted_proxies", f.get("trusted_proxies", list, [])),
        metrics=metrics,
    )


def _above_zero(f: Fields, key: str, kind: type[Any], default: Any) -> Any:
    value = f.get(key, kind, default)
    if value <= 0:
        raise ConfigError(f"{f.where}.{key} must be positive")
    return value


def _networks(where: str, entries: list[Any]) -> tuple[str, ...]:
    """Addresses or CIDR networks, as canonical network text."""
    out = []
    for entry in entries:
        try:
            out.append(str(ipaddress.ip_network(str(entry), strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{where}: {entry!r} is not an IP address or network") from exc
    return tuple(out)


def routing(data: Mapping[str, Any]) -> RoutingSettings:
    base = RoutingSettings()
    names = {"retries", "backoff_base", "backoff_max", "breaker_failures",
             "breaker_open_seconds", "rate_limit_cooldown", "credential_cooldown",
             "max_retry_after"}
    f = Fields("routing", data, names)
    values = {
        name: f.positive(name, int if isinstance(getattr(base, name), int) else float,
                         getattr(base, name))
        for name in names
    }
    return RoutingSettings(**values)


# Below this a renewal (every third of the TTL) would come too often to be worth its round
# trip, and a slow Redis moment could lapse live leases; above it a dead replica holds a key's
# slots for longer than a caller would wait.
LEASE_TTL_RANGE = (3.0, 600.0)


def limits(data: Mapping[str, Any], env: Mapping[str, str]) -> LimitsSettings:
    """`redis_url` as `env:NAME` (it may carry a password) or a literal URL without one."""
    f = Fields("limits", data, {"redis_url", "lease_ttl_seconds", "max_candidates"})
    base = LimitsSettings()
    ttl = f.get("lease_ttl_seconds", float, base.lease_ttl_seconds)
    low, high = LEASE_TTL_RANGE
    if not low <= ttl <= high:
        raise ConfigError(f"limits.lease_ttl_seconds must be between {low:g} and {high:g}")
    candidates = f.get("max_candidates", int, base.max_candidates)
    if candidates < 1:
        raise ConfigError("limits.max_candidates must be at least 1")
    url = env.get("COMETGATE_REDIS_URL") or f.get("redis_url", str)
    if url is None:
        return LimitsSettings(None, ttl, candidates)
    if url.startswith("env:"):
        return LimitsSettings(secret("limits.redis_url", url, env), ttl, candidates)
    if "@" in url.split("//", 1)[-1]:
        raise ConfigError("limits.redis_url carries credentials: reference it as env:NAME")
    return LimitsSettings(Secret(url, source="limits.redis_url"), ttl, candidates)


def conversations(data: Any) -> ConversationSettings:
    """`storage.conversations`: enabled, retention_days, sweep_interval_seconds."""
    f = Fields("storage.conversations", data or {},
               {"enabled", "retention_days", "sweep_interval_seconds"})
    base = ConversationSettings()
    days = f.get("retention_days", float, base.retention_days)
    interval = f.get("sweep_interval_seconds", float, base.sweep_interval_seconds)
    if not 0 < days <= 3650:
        raise ConfigError("storage.conversations.retention_days must be above 0 and at most "
                          "3650 (set enabled: false to store nothing)")
    if not 1 <= interval <= 86400:
        raise ConfigError("storage.conversations.sweep_interval_seconds must be between 1 and "
                          "86400")
    return ConversationSettings(f.get("enabled", bool, base.enabled), days, interval)


_MODEL_KEYS = {
    "provider", "upstream_model", "candidates", "translation", "prices", "display_name",
    "description", "version", "base_model_id", "input_token_limit", "output_token_limit",
    "input_mime_types", "thinking", "temperature", "max_temperature", "top_p", "top_k",
    "builtin_tools", "default_max_output_tokens", "task", "grounding", "cache_min_tokens",
}
GROUNDING_MODES = ("auto", "native", "emulate", "off")
# What a model is for: Gemini's supportedGenerationMethods, which routes check before a call.
_METHODS_BY_TASK = {
    "generate": ("generateContent", "countTokens"),
    "embed": ("embedContent", "batchEmbedContents"),
    # Pictures out: a Gemini image model (passed through), or an OpenAI-compatible Images API.
    "image": ("generateContent", "countTokens"),
}
# What an image model draws at most per answer when the config names no output limit: room
# for gpt-image's largest picture (6,240 tokens at high quality, 1536x1024).
_IMAGE_OUTPUT_TOKENS = 8192


def model(model_id: str, data: Mapping[str, Any]) -> ModelSettings:
    where = f"models.{model_id}"
    f = Fields(where, data, _MODEL_KEYS)
    translation = f.get("translation", str, "default")
    if translation not in TRANSLATION_POLICIES:
        raise ConfigError(f"{where}.translation must be one of {', '.join(TRANSLATION_POLICIES)}")
    # YAML reads a bare `off` as false.
    grounding = "off" if data.get("grounding") is False else f.get("grounding", str, "auto")
    if grounding not in GROUNDING_MODES:
        raise ConfigError(f"{where}.grounding must be one of {', '.join(GROUNDING_MODES)}")
    return ModelSettings(
        info=_model_info(model_id, where, f),
        candidates=_candidates(model_id, where, f),
        translation=translation,
        prices=_prices(f"{where}.prices", f.data.get("prices")),
        grounding=grounding,
    )


def _model_info(model_id: str, where: str, f: Fields) -> ModelInfo:
    thinking = Fields(f"{where}.thinking", f.get("thinking", dict) or {"style": "none"},
                      {"style", "budget_min", "budget_max", "can_disable", "levels"})
    try:
        style = ThinkingStyle(thinking.get("style", str, "none"))
    except ValueError as exc:
        raise ConfigError(f"{where}.thinking.style must be none, budget or levels") from exc
    task = f.get("task", str, "generate")
    if task not in _METHODS_BY_TASK:
        raise ConfigError(f"{where}.task must be one of: {', '.join(_METHODS_BY_TASK)}")
    embeds = task == "embed"
    return ModelInfo(
        id=model_id,
        display_name=f.get("display_name", str, model_id),
        description=f.get("description", str, "") or "",
        version=str(f.get("version", str, "1") or "1"),
        base_model_id=f.get("base_model_id", str, model_id),
        input_token_limit=f.require("input_token_limit", int),
        # An embedding answers with one vector, which Google reports as one output token.
        output_token_limit=f.get("output_token_limit", int, 1) if embeds
        else f.get("output_token_limit", int, _IMAGE_OUTPUT_TOKENS) if task == "image"
        else f.require("output_token_limit", int),
        input_mime_types=tuple(f.get("input_mime_types", list, ["text/plain"])),
        thinking=style,
        thinking_budget_min=thinking.get("budget_min", int, 0),
        thinking_budget_max=thinking.get("budget_max", int, 0),
        thinking_can_disable=thinking.get("can_disable", bool, True),
        thinking_levels=tuple(str(v).upper() for v in thinking.get("levels", list, [])),
        temperature=f.get("temperature", float),
        max_temperature=f.get("max_temperature", float),
        top_p=f.get("top_p", float),
        top_k=f.get("top_k", int),
        builtin_tools=tuple(f.get("builtin_tools", list, [])),
        default_max_output_tokens=f.positive("default_max_output_tokens", int, None),
        generation_methods=_METHODS_BY_TASK[task],
        cache_min_tokens=f.positive("cache_min_tokens", int, None),
        output_modalities=("TEXT", "IMAGE") if task == "image" else ("TEXT",),
    )


def _candidates(model_id: str, where: str, f: Fields) -> tuple[CandidateSettings, ...]:
    """`provider` + `upstream_model` is shorthand for a single candidate."""
    listed = f.get("candidates", list)
    if listed is not None and f.get("provider", str) is not None:
        raise ConfigError(f"{where}: give provider or candidates, not both")
    if listed is None:
        return (CandidateSettings(f.require("provider", str),
                                  f.get("upstream_model", str, model_id)),)
    if not listed:
        raise ConfigError(f"{where}.candidates must not be empty")
    out = []
    for index, item in enumerate(listed):
        c = Fields(f"{where}.candidates[{index}]", item,
                   {"provider", "upstream_model", "priority", "weight"})
        weight = c.positive("weight", float, 1.0)
        if weight == 0:
            raise ConfigError(f"{c.where}.weight must be positive")
        out.append(CandidateSettings(c.require("provider", str),
                                     c.get("upstream_model", str, model_id),
                                     c.get("priority", int, 0), weight))
    return tuple(out)


def _prices(where: str, data: Any) -> tuple[PriceVersion, ...]:
    """One mapping (prices since forever, or since its `effective`) or a list of versions.

    In a list at most one version may omit `effective`; versions come out sorted by date."""
    if data is None:
        return ()
    if isinstance(data, Mapping):
        return (_price_version(where, data),)
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where} must be a mapping or a non-empty list of mappings")
    versions = sorted((_price_version(f"{where}[{i}]", item) for i, item in enumerate(data)),
                      key=lambda v: v.effective or SINCE_FOREVER)
    for earlier, later in pairwise(versions):
        if earlier.effective == later.effective:
            when = later.effective.isoformat() if later.effective else "forever"
            raise ConfigError(f"{where}: two versions are effective since {when}")
    return tuple(versions)


def _price_version(where: str, data: Any) -> PriceVersion:
    f = Fields(where, data, {"input", "output", "thinking", "cached_input", "effective",
                             "per_1k_searches", "per_1k_page_fetches", "per_sandbox_second",
                             "per_image", "service_tiers", "cache_storage_per_hour"})
    return PriceVersion(
        input=_usd(f, "input") or Decimal(0),
        output=_usd(f, "output") or Decimal(0),
        thinking=_usd(f, "thinking"),
        cached_input=_usd(f, "cached_input"),
        effective=_effective(f"{where}.effective", f.data.get("effective")),
        per_1k_searches=_usd(f, "per_1k_searches"),
        per_1k_page_fetches=_usd(f, "per_1k_page_fetches"),
        per_sandbox_second=_usd(f, "per_sandbox_second"),
        per_image=_usd(f, "per_image"),
        service_tiers=_service_tiers(f"{where}.service_tiers", f.data.get("service_tiers")),
        cache_storage_per_hour=_usd(f, "cache_storage_per_hour"),
    )


# The tiers that mean "the standard rate": a factor for them would contradict the token prices.
_STANDARD_TIERS = ("default", "auto")
MAX_TIER_FACTOR = Decimal(100)


def _service_tiers(where: str, data: Any) -> tuple[tuple[str, Decimal], ...]:
    """`{priority: 2.0, flex: 0.5}`: each tier's factor on the token prices."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of tier name to price factor")
    tiers: list[tuple[str, Decimal]] = []
    for name in data:
        if not isinstance(name, str) or not name or name in _STANDARD_TIERS:
            raise ConfigError(f"{where}: {name!r} is not a tier to price apart "
                              f"({' and '.join(_STANDARD_TIERS)} always cost the token prices)")
        factor = _usd(Fields(where, data, set(data)), name)
        if factor is None or factor <= 0 or factor > MAX_TIER_FACTOR:
            raise ConfigError(f"{where}.{name} must be a factor above 0 and at most "
                              f"{MAX_TIER_FACTOR}")
        tiers.append((name, factor))
    return tuple(tiers)


def _usd(f: Fields, key: str) -> Decimal | None:
    """A price as an exact decimal: YAML's 0.30 is read as the float 0.3, and `str` gives back
    the shortest text that round-trips, so the price is the one the operator wrote."""
    value = f.data.get(key)
    if value is None:
        return None
    try:
        price = Decimal(str(value).strip() if isinstance(value, int | float | str) else "?")
    except InvalidOperation:
        raise ConfigError(f"{f.where}.{key} must be a number") from None
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{f.where}.{key} must be a non-negative number")
    return price


def _effective(where: str, value: Any) -> datetime | None:
    """`YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp with its offset; YAML may already
    have turned either into a date or datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"{where} must be YYYY-MM-DD or an RFC 3339 timestamp") from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigError(f"{where} needs a time zone (Z or ±hh:mm)")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ConfigError(f"{where} must be YYYY-MM-DD or an RFC 3339 timestamp")


def check_references(
    providers: tuple[ProviderSettings, ...], models: tuple[ModelSettings, ...],
    kinds: Mapping[str, ProviderKind],
) -> None:
    """A model may only promise what its providers can deliver: `GET models` reports these
    capabilities and defaults as facts, so a mismatch is a configuration error, not a
    surprise at request time."""
    by_name = {p.name: p for p in providers}
    for spec in models:
        for index, candidate in enumerate(spec.candidates):
            found = by_name.get(candidate.provider)
            if found is None:
                field_name = "provider" if len(spec.candidates) == 1 else f"candidates[{index}]"
                raise ConfigError(
                    f"models.{spec.info.id}.{field_name} names '{candidate.provider}', which is "
                    f"not among the configured providers ({', '.join(sorted(by_name)) or 'none'})"
                )
            kind_of(found, kinds).check(spec, found)
