"""`grounding.fetch`: the bounds of the page fetches of URL context (`grounding.search` is
read by sections/search.py). The section's keys are checked here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.settings.fields import ConfigError, Fields
from cometgate.settings.tree import FetchSettings

_FETCH_KEYS = {"enabled", "allow_private", "ports", "max_urls", "max_bytes", "max_page_chars",
               "connect_timeout", "timeout", "max_redirects", "max_concurrent"}


def fetch(grounding: Mapping[str, Any]) -> FetchSettings:
    """From the whole `grounding` section."""
    section = Fields("grounding", grounding, {"fetch", "search"})
    f = Fields("grounding.fetch", section.get("fetch", dict) or {}, _FETCH_KEYS)
    base = FetchSettings()
    return FetchSettings(
        enabled=f.get("enabled", bool, base.enabled),
        allow_private=f.get("allow_private", bool, base.allow_private),
        ports=_ports(f),
        max_urls=_above_zero(f, "max_urls", int, base.max_urls),
        max_bytes=_above_zero(f, "max_bytes", int, base.max_bytes),
        max_page_chars=_above_zero(f, "max_page_chars", int, base.max_page_chars),
        connect_timeout=_above_zero(f, "connect_timeout", float, base.connect_timeout),
        timeout=_above_zero(f, "timeout", float, base.timeout),
        max_redirects=_not_negative(f, "max_redirects", base.max_redirects),
        max_concurrent=_above_zero(f, "max_concurrent", int, base.max_concurrent),
    )


def _ports(f: Fields) -> tuple[int, ...]:
    ports = f.get("ports", list, list(FetchSettings().ports))
    if not all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
        raise ConfigError("grounding.fetch.ports must list TCP ports (1 to 65535)")
    return tuple(ports)


def _above_zero(f: Fields, key: str, kind: type[Any], default: Any) -> Any:
    value = f.get(key, kind, default)
    if value <= 0:
        raise ConfigError(f"grounding.fetch.{key} must be positive")
    return value


def _not_negative(f: Fields, key: str, default: int) -> int:
    value: int = f.get(key, int, default)
    if value < 0:
        raise ConfigError(f"grounding.fetch.{key} must not be negative")
    return value
