"""Checks a canonical request against what the chosen model can do, before any upstream sees it.

What the model cannot honour is found as a fact (`canonical.refusals`) and worded by the
caller's dialect: Google's wording for Gemini callers (the default), OpenAI's and Anthropic's
for theirs, each naming the caller's own fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    GenerateRequest,
    GenerationParams,
    ModelInfo,
    ThinkingConfig,
    ThinkingStyle,
    Untranslated,
)
from cometgate.canonical.refusals import (
    BudgetOutOfRange,
    LevelNotOffered,
    LevelOnBudgetModel,
    MediaUnsupported,
    OutputTooLong,
    Refusal,
    TemperatureTooHigh,
    ThinkingRequired,
    ThinkingUnsupported,
)
from cometgate.canonical.thinking_levels import level_budget, nearest_level
from cometgate.dialects.gemini.refusals import gemini_refusal
from cometgate.errors import InvalidRequest

# A refusal in the words of the caller's dialect.
RefusalWords = Callable[[Refusal], InvalidRequest]


def check_request(
    request: GenerateRequest, model: ModelInfo, words: RefusalWords = gemini_refusal
) -> None:
    """Raise InvalidRequest, worded by `words`, for the first thing the model cannot honour;
    return quietly otherwise."""
    refusal = refusal_of(request, model)
    if refusal is not None:
        raise words(refusal)


def refusal_of(request: GenerateRequest, model: ModelInfo) -> Refusal | None:
    if request.thinking is not None:
        refusal = _thinking_refusal(request.thinking, model)
        if refusal is not None:
            return refusal
    return _input_refusal(request, model) or _params_refusal(request.params, model)


def with_model_defaults(request: GenerateRequest, model: ModelInfo) -> GenerateRequest:
    """Fill parameters the caller left out with the model's configured defaults, so what
    `GET models/{id}` reports (temperature, topP, topK) is exactly what a generation uses."""
    params = request.params
    filled = replace(
        params,
        temperature=params.temperature if params.temperature is not None else model.temperature,
        top_p=params.top_p if params.top_p is not None else model.top_p,
        top_k=params.top_k if params.top_k is not None else model.top_k,
        max_output_tokens=(
            params.max_output_tokens if params.max_output_tokens is not None
            else model.default_max_output_tokens
        ),
    )
    return request if filled == params else replace(request, params=filled)


def levels_as_budget(request: GenerateRequest, model: ModelInfo) -> GenerateRequest:
    """The request with its thinking level turned into a budget within the model's range
    (`thinking_levels`), when the model takes budgets only; otherwise the request unchanged.
    For callers whose dialect has only levels (OpenAI's reasoning_effort, Anthropic's effort)."""
    thinking = request.thinking
    if (thinking is None or thinking.level is None or thinking.budget is not None
            or model.thinking is not ThinkingStyle.BUDGET):
        return request
    budget = level_budget(thinking.level, model.thinking_budget_min, model.thinking_budget_max)
    return replace(request, thinking=replace(thinking, level=None, budget=budget))


def efforts_as_offered_levels(request: GenerateRequest, model: ModelInfo) -> GenerateRequest:
    """The request with its thinking level moved to the nearest level the model offers, when
    the model takes levels. For Anthropic callers: every Claude model takes every effort, so
    an effort is a wish to be met as closely as the model allows, not a level to refuse."""
    thinking = request.thinking
    if thinking is None or thinking.level is None or model.thinking is not ThinkingStyle.LEVELS:
        return request
    level = nearest_level(thinking.level, model.thinking_levels)
    return request if level == thinking.level else replace(
        request, thinking=replace(thinking, level=level))


def adaptive_as_no_thinking(request: GenerateRequest, model: ModelInfo) -> GenerateRequest:
    """For Anthropic callers: adaptive thinking (the model decides whether and how much to
    think, with or without an effort) on a model that cannot think is met by not thinking —
    a choice adaptive thinking allows — and reported as dropped (a strict policy refuses it
    instead, and does not call this). Claude Code asks every model for adaptive thinking and
    has no fallback that turns it off. A fixed `budget_tokens` is a demand: still refused."""
    thinking = request.thinking
    if (thinking is None or model.thinking is not ThinkingStyle.NONE
            or not (thinking.level is not None or thinking.budget == -1)):
        return request
    dropped = Untranslated(
        "thinking", f"models/{model.id} does not think; adaptive thinking lets the model "
        "decide, and this one answers without thinking", droppable=True)
    return replace(request, thinking=None, untranslated=(*request.untranslated, dropped))


def _thinking_refusal(thinking: ThinkingConfig, model: ModelInfo) -> Refusal | None:
    if model.thinking is ThinkingStyle.NONE:
        dynamic = thinking.level is not None or thinking.budget == -1
        return ThinkingUnsupported(model.id, dynamic)
    if thinking.level is not None:
        if model.thinking is ThinkingStyle.BUDGET:
            return LevelOnBudgetModel(model.id, thinking.level)
        if thinking.level not in model.thinking_levels:
            return LevelNotOffered(model.id, thinking.level, model.thinking_levels)
    budget = thinking.budget
    if budget is None or budget == -1:  # -1 asks for a dynamic budget, valid everywhere
        return None
    if budget == 0:
        return None if model.thinking_can_disable else ThinkingRequired(model.id)
    if model.thinking is ThinkingStyle.BUDGET and not (
        model.thinking_budget_min <= budget <= model.thinking_budget_max
    ):
        return BudgetOutOfRange(model.id, budget, model.thinking_budget_min,
                                model.thinking_budget_max)
    return None


def _input_refusal(request: GenerateRequest, model: ModelInfo) -> Refusal | None:
    for m_index, message in enumerate(request.messages):
        for p_index, part in enumerate(message.parts):
            if isinstance(part, BlobPart | FileRefPart):
                mime = part.mime_type or "unknown"
                if mime not in model.input_mime_types:
                    return MediaUnsupported(model.id, mime, model.input_mime_types, m_index,
                                            p_index, inline=isinstance(part, BlobPart))
    return None


def _params_refusal(params: GenerationParams, model: ModelInfo) -> Refusal | None:
    top = model.max_temperature
    if params.temperature is not None and top is not None and params.temperature > top:
        return TemperatureTooHigh(model.id, params.temperature, top)
    limit = model.output_token_limit
    if params.max_output_tokens is not None and params.max_output_tokens > limit:
        return OutputTooLong(model.id, params.max_output_tokens, limit)
    return None
