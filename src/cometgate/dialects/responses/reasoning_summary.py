"""`reasoning.summary` on a model that does not think.

A summary asks to see the model's reasoning; it changes nothing of the answer itself. So on a
model with no thinking at all it only tunes the output, and is treated like any other tuning
field: named as untranslated and droppable, so that the translation policy decides (strict
refuses, default and lenient drop and report it in `x-cometgate-dropped`). An `effort` is a
different matter (it asks for thinking), and stays a capability refusal.
"""

from __future__ import annotations

from dataclasses import replace

from cometgate.canonical import GenerateRequest, ModelInfo, ThinkingStyle, Untranslated

SUMMARY = "reasoning.summary"


def summary_without_thinking(request: GenerateRequest, model: ModelInfo) -> GenerateRequest:
    """The request without its summary wish, reported as droppable, when `model` does not
    think and the request asked for a summary only; otherwise the request unchanged."""
    thinking = request.thinking
    if (model.thinking is not ThinkingStyle.NONE or thinking is None
            or thinking.include_thoughts is not True
            or thinking.level is not None or thinking.budget is not None):
        return request
    reason = f"models/{model.id} does not think, so it has no reasoning to summarise"
    return replace(request, thinking=None, untranslated=(
        *request.untranslated, Untranslated(SUMMARY, reason, droppable=True)))
