"""`storage.files`: the Gemini Files API's limits, retention and where the bytes live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cometgate.settings.fields import ConfigError, Fields

GIB = 1024**3
MIB = 1024**2
FILE_STORES = ("auto", "data_dir", "database")


@dataclass(frozen=True, slots=True)
class FileSettings:
    # "auto": the data directory on SQLite, the database itself on PostgreSQL (where several
    # replicas may serve one key, and each must read what another received).
    store: str = "auto"
    max_file_bytes: int = 2 * GIB  # Google's limit per file
    max_key_bytes: int = 20 * GIB  # Google's storage per project; here per key
    ttl_hours: float = 48.0  # Google keeps a file 48 hours
    sweep_interval_seconds: float = 3600.0
    # A gateway file sent to a translated upstream travels inline in the request; past this
    # the call is refused (Google's own limit for inline data in one request is 20 MB).
    max_inline_bytes: int = 20 * MIB


def files(data: Any) -> FileSettings:
    """`storage.files`: store, max_file_bytes, max_key_bytes, ttl_hours,
    sweep_interval_seconds, max_inline_bytes."""
    f = Fields("storage.files", data or {}, set(FileSettings.__dataclass_fields__))
    base = FileSettings()
    store = f.get("store", str, base.store)
    if store not in FILE_STORES:
        raise ConfigError(f"storage.files.store must be one of {', '.join(FILE_STORES)}")
    sizes = {name: f.get(name, int, getattr(base, name))
             for name in ("max_file_bytes", "max_key_bytes", "max_inline_bytes")}
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"storage.files.{name} must be at least 1")
    ttl = f.get("ttl_hours", float, base.ttl_hours)
    interval = f.get("sweep_interval_seconds", float, base.sweep_interval_seconds)
    if not 0 < ttl <= 24 * 3650:
        raise ConfigError("storage.files.ttl_hours must be above 0 and at most 87600")
    if not 1 <= interval <= 86400:
        raise ConfigError("storage.files.sweep_interval_seconds must be between 1 and 86400")
    return FileSettings(store, ttl_hours=ttl, sweep_interval_seconds=interval, **sizes)
