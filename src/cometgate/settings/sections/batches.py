"""`batches`: how the gateway's own workers run Gemini batches (`batchGenerateContent`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cometgate.settings.fields import ConfigError, Fields


@dataclass(frozen=True, slots=True)
class BatchSettings:
    enabled: bool = True  # false: this replica serves the routes but runs no batch requests
    # Requests of batches run at once per provider (the provider of the model's first
    # candidate), unless `provider_concurrency` names that provider.
    concurrency: int = 4
    provider_concurrency: Mapping[str, int] = field(default_factory=dict)
    # A claimed request is its worker's for this long, renewed every third of it; a replica
    # that dies leaves its requests to be claimed again once their leases lapse.
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0  # how often idle workers look for requests to claim
    expire_hours: float = 48.0  # a batch unfinished this long after creation is EXPIRED
    max_requests: int = 10_000  # per batch
    # How often a batch handed to an upstream's batch API (a provider's `batch: upstream`)
    # is asked how far it is; its results arrive at the first poll after it ended.
    upstream_poll_seconds: float = 30.0


def batches(data: Any) -> BatchSettings:
    """The `batches` section (all keys optional)."""
    allowed = {"enabled", "concurrency", "provider_concurrency", "lease_seconds",
               "poll_seconds", "expire_hours", "max_requests", "upstream_poll_seconds"}
    f = Fields("batches", data or {}, allowed)
    base = BatchSettings()
    concurrency = f.get("concurrency", int, base.concurrency)
    per_provider = f.get("provider_concurrency", dict, {})
    for name, value in per_provider.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"batches.provider_concurrency.{name} must be a positive integer")
    lease = f.get("lease_seconds", float, base.lease_seconds)
    poll = f.get("poll_seconds", float, base.poll_seconds)
    expire = f.get("expire_hours", float, base.expire_hours)
    most = f.get("max_requests", int, base.max_requests)
    if concurrency < 1 or most < 1:
        raise ConfigError("batches.concurrency and batches.max_requests must be at least 1")
    if not 0.5 <= lease <= 3600 or not 0.01 <= poll <= 60:
        raise ConfigError("batches.lease_seconds must be between 0.5 and 3600, "
                          "batches.poll_seconds between 0.01 and 60")
    if not 0 < expire <= 24 * 365:
        raise ConfigError("batches.expire_hours must be above 0 and at most 8760")
    upstream_poll = f.get("upstream_poll_seconds", float, base.upstream_poll_seconds)
    if not 0.01 <= upstream_poll <= 3600:
        raise ConfigError("batches.upstream_poll_seconds must be between 0.01 and 3600")
    return BatchSettings(f.get("enabled", bool, base.enabled), concurrency,
                         dict(per_provider), lease, poll, expire, most, upstream_poll)
