"""What a model is and can do, as `GET models` reports it and validation enforces it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ThinkingStyle(StrEnum):
    NONE = "none"  # not a thinking model: any thinking config is refused
    BUDGET = "budget"  # thinkingBudget within [min, max]; levels refused
    LEVELS = "levels"  # thinkingLevel from an allowed set; budgets accepted as legacy


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # the name callers use, without "models/"
    display_name: str
    description: str
    version: str
    base_model_id: str
    input_token_limit: int
    output_token_limit: int
    input_mime_types: tuple[str, ...] = ("text/plain",)
    thinking: ThinkingStyle = ThinkingStyle.NONE
    thinking_budget_min: int = 0
    thinking_budget_max: int = 0
    thinking_can_disable: bool = True
    thinking_levels: tuple[str, ...] = ()
    temperature: float | None = None
    max_temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    # Applied when a caller sets no maxOutputTokens: small models can repeat themselves until
    # their context is full, and a request should end in seconds, not minutes.
    default_max_output_tokens: int | None = None
    builtin_tools: tuple[str, ...] = ()  # Gemini built-in tool names the target can serve
    generation_methods: tuple[str, ...] = ("generateContent", "countTokens")
    # The fewest tokens a cachedContent of this model may hold (Google's models declare
    # one); None: any size.
    cache_min_tokens: int | None = None
    # What its answers can hold ("TEXT", "IMAGE"): Gemini's responseModalities values.
    output_modalities: tuple[str, ...] = ("TEXT",)
