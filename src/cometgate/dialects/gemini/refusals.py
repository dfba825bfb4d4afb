"""A model's refusals (`canonical.refusals`) in Google's words, for Gemini callers: the
messages the real Gemini API sends where it has one (gemini-wire.md §b.2), because clients
and people search for those exact strings."""

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

_CONFIG = "* GenerateContentRequest.generation_config"
_TOOL_FIELDS = {"url_context": "urlContext", "google_maps": "googleMaps"}


def gemini_refusal(refusal: Refusal) -> InvalidRequest:
    match refusal:
        case ThinkingUnsupported(model=model):
            return InvalidRequest(f"Thinking is not enabled for models/{model}")
        case LevelOnBudgetModel():
            return InvalidRequest("Thinking level is not supported for this model.")
        case LevelNotOffered(level=level):
            return InvalidRequest(f"Thinking level {level} is not supported for this model.")
        case ThinkingRequired():
            return InvalidRequest("Budget 0 is invalid. This model only works in thinking mode.")
        case BudgetOutOfRange(model=model, budget=budget, low=low, high=high):
            return InvalidRequest(
                f"The thinking budget ({budget}) is invalid. Valid budgets for models/{model} "
                f"are {low} to {high}, 0 (off) or -1.")
        case MediaUnsupported():
            return _media(refusal)
        case TemperatureTooHigh(model=model, maximum=maximum):
            return InvalidRequest(f"{_CONFIG}.temperature: temperature must be between 0 and "
                                  f"{maximum:g} for models/{model}.")
        case OutputTooLong(model=model, max_output_tokens=wanted, limit=limit):
            return InvalidRequest(
                f"{_CONFIG}.max_output_tokens: max_output_tokens ({wanted}) exceeds the limit "
                f"of models/{model} ({limit}).")
        case PromptTooLong(prompt_tokens=tokens, limit=limit):
            counted = "" if tokens is None else f" ({tokens})"
            return InvalidRequest(f"The input token count{counted} exceeds the maximum number "
                                  f"of tokens allowed ({limit}).")
        case ToolUnavailable(tool=tool):
            path = f"tools.{_TOOL_FIELDS[tool]}"
            message = tool_unavailable_text(refusal, path)
            return InvalidRequest(message, violations={path: message})
        case ImageOutputUnsupported(model=model, able=able):
            # Google's own words for a model that cannot draw, then where to go instead.
            return InvalidRequest(
                "Model does not support the requested response modalities: image. "
                f"models/{model} makes no images. {able_models(able)}",
                violations={f"{_CONFIG}.response_modalities": "image output is not "
                            f"supported by models/{model}"})
        case CodeExecutionUnsupported(model=model, able=able):
            return InvalidRequest(
                f"tools.codeExecution is not supported by models/{model}: it runs no code, "
                f"natively or in this gateway's sandbox. {able_models(able)}",
                violations={"tools.codeExecution": f"not available on models/{model}"})


def _media(refusal: MediaUnsupported) -> InvalidRequest:
    kind = "inline_data" if refusal.inline else "file_data"
    where = f"contents[{refusal.message}].parts[{refusal.part}].{kind}"
    return InvalidRequest(
        f"Unsupported MIME type: {refusal.mime_type}. models/{refusal.model} accepts only "
        f"{', '.join(refusal.accepted)} input ({where}).",
        violations={f"{where}.mime_type":
                    f"{refusal.mime_type} is not supported by models/{refusal.model}"},
    )


def search_refusal(model: str, path: str, mode: str, able: list[str]) -> InvalidRequest:
    """Google Search grounding no upstream of the model runs and the gateway does not run for
    it: the caller hears why, and what would serve it (a model that has it, or for the
    operator, a search backend)."""
    where = path or "tools"
    if mode == "off":
        reason = "Google Search grounding is turned off for this model (grounding: off)"
    elif mode == "native":
        reason = ("Google Search grounding is set to run only in the model's upstream "
                  "(grounding: native), and none of its upstreams runs a web search")
    else:
        reason = ("none of its upstreams runs a web search and this gateway has no search "
                  "backend; an operator can configure one: grounding: {search: {kind: "
                  "searxng, base_url: http://searxng:8080}} (or kind brave or tavily, with "
                  "api_key: env:NAME)")
    others = [name for name in able if name != model]
    hint = f" Models that have it here: {', '.join(others)}." if others else ""
    return InvalidRequest(f"{where} is not supported by models/{model}: {reason}.{hint}",
                          violations={where: "Google Search grounding is not available on "
                                      "this model"})
