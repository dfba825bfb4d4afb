"""URL context: the pages a prompt names, read for the model, and what became of each URL.

The caller never calls the tool: the answer carries one entry per URL the prompt named, in
the prompt's order, with how its retrieval ended (Gemini's `urlContextMetadata`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class UrlRetrieval(StrEnum):
    SUCCESS = "success"
    ERROR = "error"  # unreachable, timed out, an error status, not a readable type
    PAYWALL = "paywall"  # the site asks for payment (402)
    UNSAFE = "unsafe"  # refused without connecting: not a public address, port or scheme


@dataclass(frozen=True, slots=True)
class UrlMetadata:
    url: str  # as the prompt named it
    status: UrlRetrieval
