"""The `storage.usage` section: retention of usage records and their hourly rollups."""

from __future__ import annotations

from typing import Any

from cometgate.settings.fields import ConfigError, Fields
from cometgate.settings.tree import UsageRetentionSettings

MAX_RETENTION_DAYS = 36500
MAX_COMMIT_BUDGET_MS = 1000  # records wait in memory (journaled) no longer than this


def usage_retention(data: Any) -> UsageRetentionSettings:
    """`retention_days` (records), `hourly_rollup_retention_days`, `sweep_interval_seconds`,
    `commit_budget_ms`; a retention left out or null keeps everything."""
    f = Fields("storage.usage", data or {},
               {"retention_days", "hourly_rollup_retention_days", "sweep_interval_seconds",
                "commit_budget_ms"})
    base = UsageRetentionSettings()
    records = f.get("retention_days", float)
    hourly = f.get("hourly_rollup_retention_days", float)
    interval = f.get("sweep_interval_seconds", float, base.sweep_interval_seconds)
    for name, days in (("retention_days", records), ("hourly_rollup_retention_days", hourly)):
        if days is not None and not 0 < days <= MAX_RETENTION_DAYS:
            raise ConfigError(f"storage.usage.{name} must be above 0 and at most "
                              f"{MAX_RETENTION_DAYS} (leave it out to keep everything)")
    if not 1 <= interval <= 86400:
        raise ConfigError("storage.usage.sweep_interval_seconds must be between 1 and 86400")
    budget_ms = f.get("commit_budget_ms", float)
    if budget_ms is None:
        budget_ms = base.commit_budget_seconds * 1000
    if not 0 <= budget_ms <= MAX_COMMIT_BUDGET_MS:
        raise ConfigError("storage.usage.commit_budget_ms must be between 0 and "
                          f"{MAX_COMMIT_BUDGET_MS}")
    return UsageRetentionSettings(records, hourly, interval, budget_ms / 1000)
