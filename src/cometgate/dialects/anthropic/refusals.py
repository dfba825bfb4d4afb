"""A model's refusals (`canonical.refusals`) in Anthropic's words, for Anthropic callers:
`invalid_request_error`s whose message starts with the caller's own field path, as Anthropic's
validation errors do ("max_tokens: …", "thinking.budget_tokens: …"), and Anthropic's own
sentences where it has one ("prompt is too long: N tokens > M maximum"; "max_tokens: N > M,
which is the maximum allowed number of output tokens for MODEL")."""

from __future__ import annotations

from cometgate.canonical.refusals import (
    BudgetOutOfRange,
    CodeExecutionUnsupported,
    ImageOutputUnsupported,
    LevelNotOffered,
    LevelOnBudgetModel,
    MediaUnsupported,
    OutputTooLong,
    PromptTooLong,
    Refusal,
    TemperatureTooHigh,
    ThinkingRequired,
    ThinkingUnsupported,
    ToolUnavailable,
    able_models,
)
from cometgate.dialects.tool_refusal import tool_unavailable_text
from cometgate.errors import InvalidRequest


def anthropic_refusal(refusal: Refusal) -> InvalidRequest:
    match refusal:
        case ThinkingUnsupported(model=model, dynamic=True):
            # Only adaptive thinking leaves the amount to the model. Claude Code reads this
            # wording (`thinking.type`, "adaptive", "not supported") as its cue to change
            # how it asks for thinking.
            return _at("thinking.type", "adaptive thinking is not supported on this model "
                                        f"('{model}' has no thinking)")
        case ThinkingUnsupported(model=model):
            return _at("thinking", f"'{model}' does not support thinking")
        case LevelOnBudgetModel(model=model) | LevelNotOffered(model=model):
            # Not met in practice: an effort becomes a budget or the nearest offered level.
            return _at("output_config.effort", f"'{model}' does not support this effort")
        case ThinkingRequired(model=model):
            return _at("thinking.type", f"'{model}' only works with thinking enabled")
        case BudgetOutOfRange(model=model, low=low, high=high):
            return _at("thinking.budget_tokens",
                       f"Input should be between {low} and {high} for '{model}'")
        case MediaUnsupported(model=model, mime_type=mime, accepted=accepted):
            return _at("messages", f"'{model}' does not accept {mime} input; it accepts only "
                                   f"{', '.join(accepted)}")
        case TemperatureTooHigh(model=model, maximum=maximum):
            return _at("temperature",
                       f"Input should be less than or equal to {maximum:g} for '{model}'")
        case OutputTooLong(model=model, max_output_tokens=wanted, limit=limit):
            return _at("max_tokens", f"{wanted} > {limit}, which is the maximum allowed "
                                     f"number of output tokens for {model}")
        case PromptTooLong(prompt_tokens=tokens, limit=limit):
            counted = "" if tokens is None else f"{tokens} tokens "
            return InvalidRequest(f"prompt is too long: {counted}> {limit} maximum",
                                  violations={"messages": "prompt is too long"})
        case ToolUnavailable(tool=tool):
            return _at("tools", tool_unavailable_text(refusal, f"the built-in tool {tool}"))
        case ImageOutputUnsupported(model=model, able=able):
            return _at("messages", f"{model} does not generate images. {able_models(able)}")
        case CodeExecutionUnsupported(model=model, able=able):
            return _at("tools", f"code execution is not available on {model}. "
                                f"{able_models(able)}")


def _at(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", violations={path: message})
