"""The seam between the request path and OpenTelemetry.

The gateway and the meter hold a `Tracer` or None. None (the default: no OTLP endpoint
configured) means every hook on the request path is one `is not None` test, and
OpenTelemetry is not even imported; `otel.OtelTracer` is the one implementation, built by the
app only when an endpoint is configured.

    start_request   when a request is admitted: its span (a SERVER span named after the
                    operation and the model the caller asked for)
    attempts        wraps one request's attempt function: each upstream attempt its own
                    CLIENT span, a child of the request's
    RequestTrace.end  when the request's usage record is made, however it ended
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cometgate.canonical import GenerateRequest, Usage
from cometgate.routing.plan import Attempt

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RequestEnd:
    """How a request ended, as its usage record says."""

    status: int
    usage: Usage | None
    provider: str | None
    upstream_model: str | None
    failure_class: str | None
    seconds: float
    first_chunk_seconds: float | None  # streams: until the first chunk reached the caller


class RequestTrace(Protocol):
    def end(self, end: RequestEnd) -> None: ...


class Tracer(Protocol):
    def start_request(
        self, *, operation: str, model: str, dialect: str, stream: bool
    ) -> RequestTrace: ...

    def attempts(
        self,
        attempt: Callable[[Attempt], Awaitable[T]],
        *,
        operation: str,
        content: Callable[[], GenerateRequest] | None = None,
    ) -> Callable[[Attempt], Awaitable[T]]:
        """`attempt`, each call traced. `content`: the caller's request, read only when the
        operator opted in to recording prompts."""
        ...

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        ...


def operation_name(dialect: str, *, embedding: bool) -> str:
    """gen_ai.operation.name: what the caller asked for, in the GenAI conventions' words."""
    if embedding:
        return "embeddings"
    return "generate_content" if dialect == "gemini" else "chat"
