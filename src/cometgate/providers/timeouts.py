"""How long one upstream attempt may take, phase by phase."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds, all positive. `first_byte` runs from sending the request to the response
    headers (a local CPU model may queue for a while); `idle` is the longest silence between
    two body chunks; `total` bounds the whole attempt, stream included."""

    connect: float = 5.0
    first_byte: float = 600.0
    idle: float = 120.0
    total: float = 1800.0

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "idle", "total"):
            if not getattr(self, name) > 0:
                raise ValueError(f"timeouts.{name} must be a positive number of seconds")
