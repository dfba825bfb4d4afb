"""Conversation content: messages made of typed parts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeAlias

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

Role: TypeAlias = Literal["user", "assistant"]
"""Tool results travel inside user messages (as Gemini carries them); a dialect that needs a
separate tool role (OpenAI) splits them out when it encodes."""


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    signature: bytes | None = None  # Gemini may attach an opaque thought signature to any part


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """Model reasoning ("thought" in Gemini). The signature is opaque and must round-trip."""

    text: str
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class BlobPart:
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class FileRefPart:
    uri: str
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A call the model asks the caller to run. `arguments` is free-form user data."""

    name: str
    arguments: Mapping[str, JSON]
    call_id: str | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The caller's answer to a tool call. `response` is free-form user data."""

    name: str
    response: Mapping[str, JSON]
    call_id: str | None = None


class CodeOutcome(StrEnum):
    OK = "ok"  # ran to the end
    FAILED = "failed"  # ended with an error (an exception, a non-zero exit)
    DEADLINE_EXCEEDED = "deadline_exceeded"  # stopped for running too long


@dataclass(frozen=True, slots=True)
class CodePart:
    """Code the model wrote for a code-execution tool, which ran it (not the caller): Gemini's
    executableCode. Only answers hold these; the result follows as a `CodeResultPart`."""

    code: str
    language: str = "PYTHON"


@dataclass(frozen=True, slots=True)
class CodeResultPart:
    """What running the preceding `CodePart` gave: its outcome and its output (stdout, and
    stderr after it when there is any)."""

    outcome: CodeOutcome
    output: str


Part: TypeAlias = (
    TextPart | ReasoningPart | BlobPart | FileRefPart | ToolCallPart | ToolResultPart | CodePart
    | CodeResultPart
)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]
