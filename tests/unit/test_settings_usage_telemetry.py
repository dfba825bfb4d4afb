"""The `storage.usage` retention section, and telemetry from the `telemetry` section and the
standard OTEL_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from cometgate.settings import ConfigError, TelemetrySettings, UsageRetentionSettings, load_settings


def loaded(tmp_path: Path, text: str = "", **env: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "cometgate.yaml"
    config.write_text(text or "{}\n", encoding="utf-8")
    return load_settings(config, env={"HOME": str(tmp_path), **env})


def test_by_default_everything_is_kept_and_telemetry_is_off(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)})
    assert settings.usage == UsageRetentionSettings()
    assert settings.usage.retention_days is None
    assert settings.telemetry == TelemetrySettings()
    assert not settings.telemetry.enabled and not settings.telemetry.record_content


def test_usage_retention_is_read(tmp_path: Path) -> None:
    settings = loaded(tmp_path, "storage:\n  usage:\n    retention_days: 30\n"
                      "    hourly_rollup_retention_days: 400\n    sweep_interval_seconds: 60\n")
    assert settings.usage == UsageRetentionSettings(30.0, 400.0, 60.0)
    assert settings.usage.commit_budget_seconds == 0.05  # the default budget


@pytest.mark.parametrize(("text", "seconds"), [
    ("commit_budget_ms: 20", 0.02), ("commit_budget_ms: 0", 0.0), ("commit_budget_ms: null", 0.05),
])
def test_the_commit_budget_is_read(tmp_path: Path, text: str, seconds: float) -> None:
    settings = loaded(tmp_path, f"storage:\n  usage:\n    {text}\n")
    assert settings.usage.commit_budget_seconds == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("retention_days: 0", "storage.usage.retention_days must be above 0 and at most 36500"),
    ("hourly_rollup_retention_days: -1",
     "storage.usage.hourly_rollup_retention_days must be above 0"),
    ("retention_days: thirty", "storage.usage.retention_days must be of type float"),
    ("sweep_interval_seconds: 0", "sweep_interval_seconds must be between 1 and 86400"),
    ("keep: forever", "storage.usage: unknown keys keep"),
    ("commit_budget_ms: -1", "storage.usage.commit_budget_ms must be between 0 and 1000"),
    ("commit_budget_ms: 1001", "storage.usage.commit_budget_ms must be between 0 and 1000"),
    ("commit_budget_ms: .nan", "storage.usage.commit_budget_ms must be between 0 and 1000"),
    ("commit_budget_ms: soon", "storage.usage.commit_budget_ms must be of type float"),
])
def test_bad_usage_retention_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loaded(tmp_path, f"storage:\n  usage:\n    {text}\n")


def test_the_base_endpoint_gets_each_signal_path(tmp_path: Path) -> None:
    telemetry = loaded(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318/",
                       OTEL_SERVICE_NAME="edge-gw",
                       OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20abc,x-tenant=7",
                       OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod").telemetry
    assert telemetry.enabled
    assert telemetry.traces_endpoint == "http://127.0.0.1:4318/v1/traces"
    assert telemetry.metrics_endpoint == "http://127.0.0.1:4318/v1/metrics"
    assert telemetry.service_name == "edge-gw"
    assert [(k, v.value) for k, v in telemetry.headers] == [
        ("authorization", "Bearer abc"), ("x-tenant", "7")]
    assert "abc" not in repr(telemetry)
    assert telemetry.resource_attributes == (("deployment.environment", "prod"),)


def test_signal_endpoints_are_used_as_given_and_none_turns_a_signal_off(
    tmp_path: Path,
) -> None:
    telemetry = loaded(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318",
                       OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="https://traces.example/otlp",
                       OTEL_METRICS_EXPORTER="none").telemetry
    assert telemetry.traces_endpoint == "https://traces.example/otlp"
    assert telemetry.metrics_endpoint is None


def test_sdk_disabled_turns_export_off_and_content_needs_opting_in(tmp_path: Path) -> None:
    telemetry = loaded(tmp_path, "telemetry:\n  record_content: true\n",
                       OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
                       OTEL_SDK_DISABLED="true").telemetry
    assert not telemetry.enabled and telemetry.record_content


@pytest.mark.parametrize(("env", "message"), [
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: cometgate exports OTLP over "
     "http/protobuf only"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
     "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"},
     "OTEL_EXPORTER_OTLP_HEADERS must be a comma-separated list of key=value pairs"),
])
def test_bad_otel_variables_are_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        loaded(tmp_path, **env)


@pytest.mark.parametrize(("text", "message"), [
    ("record_content: yes please", "telemetry.record_content must be of type bool"),
    ("metric_export_interval_seconds: 0", "between 1 and 3600"),
    ("sample: all", "telemetry: unknown keys sample"),
])
def test_bad_telemetry_section_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        loaded(tmp_path, f"telemetry:\n  {text}\n")
