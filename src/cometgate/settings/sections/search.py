"""`grounding.search`: the search backend the gateway runs itself for Google Search grounding
on models whose upstreams have no search (see grounding/search_backends.py).

    grounding:
      search: {kind: searxng, base_url: http://searxng:8080}
      # or {kind: brave, api_key: env:BRAVE_API_KEY}, {kind: tavily, api_key: env:TAVILY_API_KEY}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.settings.fields import ConfigError, Fields, secret
from cometgate.settings.tree import SearchBackendSettings

# Where each kind answers when the operator names no base_url; SearXNG is self-hosted.
_PUBLIC_URLS = {"brave": "https://api.search.brave.com", "tavily": "https://api.tavily.com"}
SEARCH_KINDS = ("searxng", "brave", "tavily")
_KEYS = {"kind", "base_url", "api_key", "timeout_seconds", "max_queries", "max_results",
         "max_response_bytes", "max_snippet_chars"}


def search_backend(data: Any, env: Mapping[str, str]) -> SearchBackendSettings | None:
    if data is None:
        return None
    where = "grounding.search"
    f = Fields(where, data, _KEYS)
    kind = f.require("kind", str)
    if kind not in SEARCH_KINDS:
        raise ConfigError(f"{where}.kind must be one of {', '.join(SEARCH_KINDS)}")
    base_url = f.get("base_url", str, _PUBLIC_URLS.get(kind))
    if not base_url:
        raise ConfigError(f"{where}.base_url is required for kind {kind}")
    api_key = secret(f"{where}.api_key", data["api_key"], env) if "api_key" in data else None
    if api_key is None and kind != "searxng":
        raise ConfigError(f"{where}.api_key is required for kind {kind} (api_key: env:NAME)")
    defaults = SearchBackendSettings(kind, base_url)
    return SearchBackendSettings(
        kind=kind,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        timeout_seconds=_positive(f, "timeout_seconds", float, defaults.timeout_seconds),
        max_queries=_positive(f, "max_queries", int, defaults.max_queries),
        max_results=_positive(f, "max_results", int, defaults.max_results),
        max_response_bytes=_positive(f, "max_response_bytes", int,
                                     defaults.max_response_bytes),
        max_snippet_chars=_positive(f, "max_snippet_chars", int, defaults.max_snippet_chars),
    )


def _positive(f: Fields, key: str, kind: type[Any], default: Any) -> Any:
    value = f.get(key, kind, default)
    if value <= 0:
        raise ConfigError(f"{f.where}.{key} must be positive")
    return value
