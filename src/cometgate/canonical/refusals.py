"""What a model cannot honour in a request, as facts rather than words: the capability checks
find one of these, and the caller's dialect says it in its own terms (field names as that
dialect spells them, its provider's phrasing), so the same refusal reads as Google's to a
Gemini caller, OpenAI's to an OpenAI caller and Anthropic's to an Anthropic caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class ThinkingUnsupported:
    """`dynamic`: the model was to decide how much to think (a dynamic budget or a level)
    rather than given a fixed budget."""

    model: str
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class LevelOnBudgetModel:
    model: str
    level: str


@dataclass(frozen=True, slots=True)
class LevelNotOffered:
    model: str
    level: str
    offered: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ThinkingRequired:
    """Thinking switched off on a model that only works thinking."""

    model: str


@dataclass(frozen=True, slots=True)
class BudgetOutOfRange:
    model: str
    budget: int
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class MediaUnsupported:
    """`message`, `part`: where the canonical request holds it (the caller's own positions
    may differ: dialects merge turns and lift system text out)."""

    model: str
    mime_type: str
    accepted: tuple[str, ...]
    message: int
    part: int
    inline: bool  # bytes in the request, not a reference to a file


@dataclass(frozen=True, slots=True)
class TemperatureTooHigh:
    model: str
    temperature: float
    maximum: float


@dataclass(frozen=True, slots=True)
class OutputTooLong:
    model: str
    max_output_tokens: int
    limit: int


@dataclass(frozen=True, slots=True)
class PromptTooLong:
    """The prompt is over the model's input (context) limit. `prompt_tokens` is None when
    only the upstream knows the count and did not say it in a structured field."""

    model: str
    prompt_tokens: int | None
    limit: int


BuiltinTool: TypeAlias = Literal["url_context", "google_maps"]


@dataclass(frozen=True, slots=True)
class ToolUnavailable:
    """A built-in tool that no upstream of this attempt runs and the gateway cannot run for
    it. `available_on`: the models here that have the tool, for the caller to choose from."""

    model: str
    tool: BuiltinTool
    available_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageOutputUnsupported:
    """Image output asked of a model that cannot draw. `able`: the models here that can."""

    model: str
    able: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CodeExecutionUnsupported:
    """Code execution asked of a model that has none, natively or in the gateway's sandbox.
    `able`: the models here that have it."""

    model: str
    able: tuple[str, ...]


Refusal: TypeAlias = (
    ThinkingUnsupported | LevelOnBudgetModel | LevelNotOffered | ThinkingRequired
    | BudgetOutOfRange | MediaUnsupported | TemperatureTooHigh | OutputTooLong | PromptTooLong
    | ToolUnavailable
    | ImageOutputUnsupported | CodeExecutionUnsupported
)


def able_models(able: tuple[str, ...]) -> str:
    """The sentence that tells a refused caller where to go instead."""
    if not able:
        return "No model here has it."
    return "Models that have it here: " + ", ".join(able) + "."
