"""The small interface every upstream implements, and the optional capabilities some add."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: the provider's own model name and the credential to use."""

    upstream_model: str
    model_version: str  # what the caller is told answered (the alias it asked for)
    credential: str | None = None  # resolved secret; never logged


class Provider(Protocol):
    name: str

    async def generate(self, request: GenerateRequest, target: Target) -> GenerateResponse: ...

    def stream(
        self, request: GenerateRequest, target: Target
    ) -> AsyncGenerator[StreamEvent, None]:
        """Closing the generator early must close the upstream exchange."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CountsTokens(Protocol):
    """Counts a request's prompt exactly as a generation would count it."""

    async def count_tokens(self, request: GenerateRequest, target: Target) -> int: ...


@runtime_checkable
class Supervised(Protocol):
    """A provider with a process of its own to start (a local model worker); it may be
    not-yet-ready, and then answers 503 UNAVAILABLE rather than hanging."""

    async def start(self) -> None: ...

    def is_ready(self) -> bool: ...
