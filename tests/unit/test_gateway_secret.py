"""The gateway secret (environment or a 0600 file in the data directory) and the settings of
stored conversations."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cometgate.gateway_secret import SECRET_FILENAME, gateway_secret, secret_from_file
from cometgate.settings import ConfigError, ConversationSettings, load_settings


def _settings(tmp_path: Path, text: str = "", **env: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "cometgate.yaml"
    config.write_text(text or "{}\n", encoding="utf-8")
    return load_settings(config, data_dir=tmp_path / "data", env={"HOME": str(tmp_path), **env})


def test_a_secret_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = gateway_secret(settings)
    path = settings.data_dir / SECRET_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert gateway_secret(settings) == first  # read back, not replaced
    assert [p.name for p in settings.data_dir.iterdir()] == [SECRET_FILENAME]  # no leftovers


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / SECRET_FILENAME
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: secret_from_file(path), range(8)))
    assert len(found) == 1


def test_the_environment_secret_wins_and_is_never_shown(tmp_path: Path) -> None:
    settings = _settings(tmp_path, COMETGATE_SECRET="shared-by-every-replica-0123")
    assert gateway_secret(settings) == b"shared-by-every-replica-0123"
    assert not (settings.data_dir / SECRET_FILENAME).exists()
    assert "shared-by" not in repr(settings)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRET_FILENAME
    path.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        secret_from_file(path)


def test_conversations_default_to_stored_for_thirty_days(tmp_path: Path) -> None:
    assert _settings(tmp_path).conversations == ConversationSettings(True, 30.0, 3600.0)
    settings = _settings(tmp_path, "storage:\n  conversations:\n    enabled: false\n"
                                   "    retention_days: 7\n    sweep_interval_seconds: 60\n")
    assert settings.conversations == ConversationSettings(False, 7.0, 60.0)


@pytest.mark.parametrize(("text", "message"), [
    ("storage:\n  conversations:\n    retention_days: 0\n", "retention_days must be above 0"),
    ("storage:\n  conversations:\n    enabled: 1\n", "enabled must be of type bool"),
    ("storage:\n  conversations:\n    keep: 3\n", "storage.conversations: unknown keys keep"),
    ("storage:\n  conversations:\n    sweep_interval_seconds: 0\n",
     "sweep_interval_seconds must be between 1 and 86400"),
])
def test_bad_conversation_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, text)
