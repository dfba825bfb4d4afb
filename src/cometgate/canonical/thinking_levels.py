"""The one table of thinking levels: what each canonical level is called by the callers that
name levels, and what it becomes on each kind of reasoning control a target may have.

    level    Anthropic effort   thinkingBudget (budget-style)   reasoning_effort (OpenAI)
    MINIMAL  —                  the model's minimum             minimal
    LOW      low                1024                            low
    MEDIUM   medium             8192                            medium
    HIGH     high               24576                           high
    XHIGH    xhigh, max         the model's maximum             high

A level-style model takes the level itself; an Anthropic caller's effort (which every Claude
model accepts at every step) becomes the nearest level the model offers, a tie going to the
higher. The budgets are the steps of Google's own OpenAI-compatibility table; "high" is the
highest effort every OpenAI-compatible server understands, so XHIGH is sent as "high".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Bound = Literal["min", "max"]  # the model's own lowest or highest budget


@dataclass(frozen=True, slots=True)
class ThinkingLevel:
    name: str
    anthropic_efforts: tuple[str, ...]
    budget: int | Bound
    reasoning_effort: str


THINKING_LEVELS: tuple[ThinkingLevel, ...] = (
    ThinkingLevel("MINIMAL", (), "min", "minimal"),
    ThinkingLevel("LOW", ("low",), 1024, "low"),
    ThinkingLevel("MEDIUM", ("medium",), 8192, "medium"),
    ThinkingLevel("HIGH", ("high",), 24576, "high"),
    ThinkingLevel("XHIGH", ("xhigh", "max"), "max", "high"),
)
LEVEL_NAMES = tuple(level.name for level in THINKING_LEVELS)  # lowest first
LEVEL_OF_ANTHROPIC_EFFORT = {effort: level.name for level in THINKING_LEVELS
                             for effort in level.anthropic_efforts}
REASONING_EFFORT_OF_LEVEL = {level.name: level.reasoning_effort for level in THINKING_LEVELS}


def level_budget(name: str, low: int, high: int) -> int:
    """The budget for a level on a model whose budgets run from `low` to `high`."""
    wanted = next((level.budget for level in THINKING_LEVELS if level.name == name), "min")
    if isinstance(wanted, int):
        return min(max(wanted, low), high)
    return low if wanted == "min" else high


def nearest_level(name: str, offered: tuple[str, ...]) -> str:
    """The offered level closest to `name` (a tie goes to the higher); `name` itself when it
    is offered or nothing is."""
    if name in offered or name not in LEVEL_NAMES:
        return name
    ranks = {level: LEVEL_NAMES.index(level) for level in offered if level in LEVEL_NAMES}
    if not ranks:
        return name
    wanted = LEVEL_NAMES.index(name)
    return min(ranks, key=lambda level: (abs(ranks[level] - wanted), -ranks[level]))
