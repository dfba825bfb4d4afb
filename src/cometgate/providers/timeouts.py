"""How long one upstream attempt may take, phase by phase, and how much it may send."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds, all positive. `first_byte` runs from sending the request to the response
    headers (a local CPU model may queue for a while); `idle` is the longest silence between
    two body chunks; `total` bounds the whole attempt, stream included.

    And bytes: `max_answer_bytes` bounds a non-streamed answer (it is held whole to be
    decoded), `max_event_bytes` one event of a stream (the decoders hold one event at a time);
    beyond either the attempt fails with a 502 and the upstream connection is closed."""

    connect: float = 5.0
    first_byte: float = 600.0
    idle: float = 120.0
    total: float = 1800.0
    max_answer_bytes: int = 64 * MIB
    max_event_bytes: int = 16 * MIB

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "idle", "total"):
            if not getattr(self, name) > 0:
                raise ValueError(f"timeouts.{name} must be a positive number of seconds")
        for name in ("max_answer_bytes", "max_event_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"timeouts.{name} must be a positive number of bytes")
