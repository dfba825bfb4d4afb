"""The `telemetry` section and the standard OpenTelemetry environment variables.

Only the OTLP http/protobuf exporter is offered. Endpoints follow the OTLP exporter
specification: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT are used as given;
OTEL_EXPORTER_OTLP_ENDPOINT is a base to which /v1/traces and /v1/metrics are appended.
OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER=none, turn a part off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from cometgate.settings.fields import ConfigError, Fields, Secret
from cometgate.settings.tree import TelemetrySettings

SUPPORTED_PROTOCOL = "http/protobuf"


def telemetry(data: Any, env: Mapping[str, str]) -> TelemetrySettings:
    f = Fields("telemetry", data or {}, {"record_content", "metric_export_interval_seconds"})
    base = TelemetrySettings()
    record_content = f.get("record_content", bool, base.record_content)
    interval = f.get("metric_export_interval_seconds", float,
                     base.metric_export_interval_seconds)
    if not 1 <= interval <= 3600:
        raise ConfigError("telemetry.metric_export_interval_seconds must be between 1 and 3600")
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TelemetrySettings(record_content=record_content)
    _check_protocol(env)
    return TelemetrySettings(
        traces_endpoint=_endpoint(env, "TRACES", "v1/traces"),
        metrics_endpoint=_endpoint(env, "METRICS", "v1/metrics"),
        headers=_headers(env),
        service_name=env.get("OTEL_SERVICE_NAME", "").strip() or base.service_name,
        resource_attributes=_pairs("OTEL_RESOURCE_ATTRIBUTES",
                                   env.get("OTEL_RESOURCE_ATTRIBUTES", "")),
        metric_export_interval_seconds=interval,
        record_content=record_content,
    )


def _endpoint(env: Mapping[str, str], signal: str, path: str) -> str | None:
    if env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return None
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    if specific:
        return _checked_url(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", specific)
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return None
    return _checked_url("OTEL_EXPORTER_OTLP_ENDPOINT", base.rstrip("/") + "/" + path)


def _checked_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {url!r}")
    return url


def _check_protocol(env: Mapping[str, str]) -> None:
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                 "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"):
        protocol = env.get(name, "").strip()
        if protocol and protocol != SUPPORTED_PROTOCOL:
            raise ConfigError(f"{name}={protocol} is not supported: cometgate exports OTLP "
                              f"over {SUPPORTED_PROTOCOL} only")


def _headers(env: Mapping[str, str]) -> tuple[tuple[str, Secret], ...]:
    # Header values are often bearer tokens: kept as secrets, never shown in a repr.
    name = "OTEL_EXPORTER_OTLP_HEADERS"
    return tuple((key, Secret(value, source=f"env:{name}"))
                 for key, value in _pairs(name, env.get(name, "")))


def _pairs(name: str, text: str) -> tuple[tuple[str, str], ...]:
    """The W3C Baggage-like `key=value,key=value` lists OTEL_* variables use."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name} must be a comma-separated list of key=value pairs")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return tuple(pairs)
