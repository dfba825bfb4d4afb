"""The `batches` config section: defaults, every key, and the refusals of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cometgate.settings import BatchSettings, ConfigError, load_settings


def _load(tmp_path: Path, text: str) -> BatchSettings:
    config = tmp_path / "cometgate.yaml"
    config.write_text(text, encoding="utf-8")
    return load_settings(config, env={"HOME": str(tmp_path)}).batches


def test_defaults_and_every_key(tmp_path: Path) -> None:
    assert _load(tmp_path, "server: {port: 8080}\n") == BatchSettings()
    loaded = _load(tmp_path, """
batches:
  enabled: false
  concurrency: 3
  provider_concurrency: {openai: 8}
  lease_seconds: 10
  poll_seconds: 0.5
  expire_hours: 24
  max_requests: 50
""")
    assert loaded == BatchSettings(False, 3, {"openai": 8}, 10.0, 0.5, 24.0, 50)


@pytest.mark.parametrize(("text", "message"), [
    ("batches: {workers: 2}", "batches: unknown keys workers"),
    ("batches: {concurrency: 0}",
     "batches.concurrency and batches.max_requests must be at least 1"),
    ("batches: {provider_concurrency: {openai: 0}}",
     "batches.provider_concurrency.openai must be a positive integer"),
    ("batches: {lease_seconds: 0.1}", "batches.lease_seconds must be between 0.5 and 3600, "
     "batches.poll_seconds between 0.01 and 60"),
    ("batches: {expire_hours: 0}", "batches.expire_hours must be above 0 and at most 8760"),
    ("batches: {concurrency: two}", "batches.concurrency must be of type int"),
])
def test_bad_values_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, text + "\n")
    assert str(refused.value) == message
