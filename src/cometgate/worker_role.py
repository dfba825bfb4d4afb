"""What one process of `cometgate serve --workers N` shares with its siblings and what it
does alone (serve_workers.py starts them; create_app reads this)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cometgate.providers.local.supervisor import SharedWorker


@dataclass(frozen=True, slots=True)
class WorkerRole:
    index: int
    # Sweeps (conversations, files, usage retention) delete what has expired: one worker runs
    # them, since N copies would only repeat the same deletes.
    sweeps: bool
    # Batch requests are claimed by one worker, so that `batches.concurrency` per provider is
    # the server's, not N times it; every worker keeps the batches' budget holds current.
    claims_batches: bool
    # At the server's first start only: marking unfinished background responses failed must
    # never touch a live sibling's, which a worker restarted after a crash would do.
    recovers_background: bool
    # The parent's shared limiter (limits/shared.py); None when Redis shares the limits.
    limiter_socket: Path | None
    # Local models the parent supervises, by provider name.
    local_models: Mapping[str, SharedWorker] = field(default_factory=dict)
