"""Checks a canonical request against what the chosen model can do, before any upstream sees it.

Messages follow the real Gemini API's wording where it has one (gemini-wire.md §b.2), because
clients and people search for those exact strings.
"""

from __future__ import annotations

from dataclasses import replace

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    GenerateRequest,
    GenerationParams,
    ModelInfo,
    ThinkingConfig,
    ThinkingStyle,
)
from cometgate.canonical.thinking_levels import level_budget, nearest_level
from cometgate.errors import InvalidRequest


def check_request(request: GenerateRequest, model: ModelInfo) -> None:
    """Raise InvalidRequest for anything the model cannot honour; return quietly otherwise."""
    if request.thinking is not None:
        _check_thinking(request.thinking, model)
    _check_inputs(request, model)
    _check_params(request.params, model)


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


def _check_thinking(thinking: ThinkingConfig, model: ModelInfo) -> None:
    if model.thinking is ThinkingStyle.NONE:
        raise InvalidRequest(f"Thinking is not enabled for models/{model.id}")
    if thinking.level is not None:
        if model.thinking is ThinkingStyle.BUDGET:
            raise InvalidRequest("Thinking level is not supported for this model.")
        if thinking.level not in model.thinking_levels:
            raise InvalidRequest(
                f"Thinking level {thinking.level} is not supported for this model."
            )
    budget = thinking.budget
    if budget is None or budget == -1:  # -1 asks for a dynamic budget, valid everywhere
        return
    if budget == 0:
        if not model.thinking_can_disable:
            raise InvalidRequest("Budget 0 is invalid. This model only works in thinking mode.")
        return
    if model.thinking is ThinkingStyle.BUDGET and not (
        model.thinking_budget_min <= budget <= model.thinking_budget_max
    ):
        raise InvalidRequest(
            f"The thinking budget ({budget}) is invalid. Valid budgets for models/{model.id} "
            f"are {model.thinking_budget_min} to {model.thinking_budget_max}, 0 (off) or -1."
        )


def _check_inputs(request: GenerateRequest, model: ModelInfo) -> None:
    for m_index, message in enumerate(request.messages):
        for p_index, part in enumerate(message.parts):
            if isinstance(part, BlobPart | FileRefPart):
                mime = part.mime_type or "unknown"
                if mime not in model.input_mime_types:
                    kind = "inline_data" if isinstance(part, BlobPart) else "file_data"
                    raise InvalidRequest(
                        f"Unsupported MIME type: {mime}. models/{model.id} accepts only "
                        f"{', '.join(model.input_mime_types)} input "
                        f"(contents[{m_index}].parts[{p_index}].{kind}).",
                        violations={f"contents[{m_index}].parts[{p_index}].{kind}.mime_type":
                                    f"{mime} is not supported by models/{model.id}"},
                    )


def _check_params(params: GenerationParams, model: ModelInfo) -> None:
    top = model.max_temperature
    if params.temperature is not None and top is not None and params.temperature > top:
        raise InvalidRequest(
            f"* GenerateContentRequest.generation_config.temperature: temperature must be "
            f"between 0 and {top:g} for models/{model.id}."
        )
    limit = model.output_token_limit
    if params.max_output_tokens is not None and params.max_output_tokens > limit:
        raise InvalidRequest(
            f"* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens "
            f"({params.max_output_tokens}) exceeds the limit of models/{model.id} ({limit})."
        )
