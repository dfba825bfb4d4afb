"""A model's refusals (`canonical.refusals`) in OpenAI's words, for OpenAI callers: the
`param` is the caller's own field (`max_tokens` or `max_completion_tokens`, as they sent it;
`reasoning_effort`; `temperature`), the `code` and sentence those OpenAI sends for the same
fault ("context_length_exceeded": "This model's maximum context length is …")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from cometgate.dialects.openai.reasoning_effort import EFFORT_BY_LEVEL
from cometgate.dialects.openai.upstream_errors import CONTEXT_LENGTH_EXCEEDED
from cometgate.dialects.tool_refusal import tool_unavailable_text
from cometgate.errors import InvalidRequest

_EFFORT = "reasoning_effort"


def openai_refusals(document: Mapping[str, Any]) -> Callable[[Refusal], InvalidRequest]:
    """The words for a caller's request: its output limit named as the caller named it."""
    limit_field = ("max_completion_tokens" if document.get("max_completion_tokens") is not None
                   else "max_tokens")
    return lambda refusal: openai_refusal(refusal, limit_field=limit_field)


def openai_refusal(refusal: Refusal, *, limit_field: str = "max_tokens") -> InvalidRequest:
    match refusal:
        case ThinkingUnsupported():
            return _error(f"Unsupported parameter: '{_EFFORT}' is not supported with this "
                          "model.", _EFFORT, "unsupported_parameter")
        case LevelNotOffered(level=level, offered=offered):
            return _unsupported_effort(_effort(level), offered)
        case LevelOnBudgetModel(level=level):
            return _unsupported_effort(_effort(level), ())
        case ThinkingRequired():
            return _unsupported_effort("none", ())
        case BudgetOutOfRange(budget=budget, low=low, high=high):
            return _error(f"Invalid '{_EFFORT}': a thinking budget of {budget} tokens is "
                          f"outside this model's range ({low} to {high}).", _EFFORT,
                          "invalid_value")
        case MediaUnsupported(mime_type=mime):
            return _error(f"Invalid content type. {_content_type(mime)} is only supported by "
                          f"certain models; this model does not accept {mime}.", "messages",
                          "invalid_value")
        case TemperatureTooHigh(temperature=value, maximum=maximum):
            return _error(f"Invalid 'temperature': decimal above maximum value. Expected a "
                          f"value <= {maximum:g}, but got {value:g} instead.", "temperature",
                          "decimal_above_max_value")
        case OutputTooLong(max_output_tokens=wanted, limit=limit):
            return _error(f"{limit_field} is too large: {wanted}. This model supports at most "
                          f"{limit} completion tokens, whereas you provided {wanted}.",
                          limit_field, "invalid_value")
        case PromptTooLong(prompt_tokens=tokens, limit=limit):
            counted = "" if tokens is None else f" However, your messages resulted in {tokens} " \
                                                "tokens."
            return _error(f"This model's maximum context length is {limit} tokens.{counted} "
                          "Please reduce the length of the messages.", "messages",
                          CONTEXT_LENGTH_EXCEEDED)
        case ToolUnavailable(tool=tool):
            return _error(tool_unavailable_text(refusal, f"The built-in tool '{tool}'"),
                          "tools", "unsupported_value")
        case ImageOutputUnsupported(model=model, able=able):
            return _error(f"The model `{model}` does not generate images. {able_models(able)}",
                          "modalities", "invalid_value")
        case CodeExecutionUnsupported(model=model, able=able):
            return _error(f"Code execution is not available on the model `{model}`. "
                          f"{able_models(able)}", "tools", "invalid_value")


def _effort(level: str) -> str:
    return EFFORT_BY_LEVEL.get(level, level.lower())


def _unsupported_effort(effort: str, offered: tuple[str, ...]) -> InvalidRequest:
    supported = ", ".join(f"'{_effort(level)}'" for level in offered)
    listed = f" Supported values are: {supported}." if supported else ""
    return _error(f"Unsupported value: '{_EFFORT}' does not support '{effort}' with this "
                  f"model.{listed}", _EFFORT, "unsupported_value")


def _content_type(mime: str) -> str:
    if mime.startswith("image/"):
        return "image_url"
    return "input_audio" if mime.startswith("audio/") else "file"


def _error(message: str, param: str, code: str) -> InvalidRequest:
    return InvalidRequest(message, violations={param: message}, code=code)
