"""`storage.files`: defaults, and each bad value refused with its key named."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.settings import ConfigError
from cometgate.settings.sections.files import GIB, FileSettings, files


def test_defaults_are_google_s() -> None:
    assert files(None) == FileSettings()
    assert (FileSettings().max_file_bytes, FileSettings().ttl_hours) == (2 * GIB, 48.0)


def test_values_are_read() -> None:
    read = files({"store": "database", "max_file_bytes": 10, "max_key_bytes": 20,
                  "ttl_hours": 1, "sweep_interval_seconds": 5, "max_inline_bytes": 3})
    assert read == FileSettings("database", 10, 20, 1.0, 5.0, 3)


@pytest.mark.parametrize(("data", "message"), [
    ({"store": "s3"}, "storage.files.store must be one of auto, data_dir, database"),
    ({"max_file_bytes": 0}, "storage.files.max_file_bytes must be at least 1"),
    ({"max_key_bytes": "lots"}, "storage.files.max_key_bytes must be of type int"),
    ({"ttl_hours": 0}, "storage.files.ttl_hours must be above 0 and at most 87600"),
    ({"sweep_interval_seconds": 0.5},
     "storage.files.sweep_interval_seconds must be between 1 and 86400"),
    ({"colour": 1}, "storage.files: unknown keys colour"),
])
def test_bad_values_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        files(data)
    assert str(refused.value) == message
