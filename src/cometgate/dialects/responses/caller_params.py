"""The settings of a Responses request → canonical tools, tool choice, generation params,
output format and thinking.

- `tools`: function tools are flat (`{"type": "function", "name", "description",
  "parameters", "strict"}`). The built-in `web_search` (and `web_search_preview`) is the
  canonical WebSearchTool: the upstreams with a search of their own run it (Gemini's Google
  Search, Anthropic's web search tool), the others refuse it (pipeline); its settings only
  tune the search (droppable). The other built-in tools (file_search, code_interpreter, …) run
  inside OpenAI and have no equivalent here: refused by name.
  Namespace tools (groups of function tools) are flattened into function tools
  (tool_namespaces). When every tool is `strict: true` and the choice is "auto", that is the
  canonical VALIDATED mode; otherwise strictness cannot be carried and is reported
  (droppable), as for chat.
- `tool_choice`: "auto" / "none" / "required", `{"type": "function", "name"}`,
  `{"type": "allowed_tools", "mode", "tools"}`; a built-in tool's choice is refused.
- `text.format`: text (no constraint), json_object, json_schema (flat: name, schema,
  strict); `text.verbosity` only tunes (droppable).
- `reasoning.effort` → a thinking level ("none" is a budget of 0); `reasoning.summary`
  ("auto", "concise", "detailed") asks for the model's thoughts, which come back as the
  reasoning item's summary text.
- `max_output_tokens` ≥ 16 (OpenAI's floor), `temperature` [0, 2], `top_p` [0, 1],
  `top_logprobs` [0, 20]; log probabilities are returned when `include` names
  "message.output_text.logprobs".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cometgate.canonical import (
    FunctionTool,
    GenerationParams,
    OutputFormat,
    ThinkingConfig,
    ToolChoice,
    ToolMode,
    Untranslated,
    WebSearchTool,
)
from cometgate.dialects.openai.caller_fields import (
    invalid_type,
    invalid_value,
    missing,
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
    required_str,
    unsupported_value,
)
from cometgate.dialects.openai.reasoning_effort import LEVEL_BY_EFFORT
from cometgate.dialects.responses.tool_namespaces import flattened
from cometgate.dialects.responses.web_search import WEB_SEARCH_TYPES
from cometgate.errors import InvalidRequest

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Settings of a search only the OpenAI service honours; a search without them still answers.
_SEARCH_TUNING = {"search_context_size": "how much a search reads is OpenAI's setting",
                  "user_location": "the searches here cannot be told the user's location",
                  "filters": "the searches here cannot be limited to domains"}
_CHOICE_MODES = {"auto": ToolMode.AUTO, "none": ToolMode.NONE, "required": ToolMode.ANY}
_EFFORTS = ("none", *LEVEL_BY_EFFORT)
_SUMMARIES = ("auto", "concise", "detailed")
_MIN_OUTPUT_TOKENS = 16
_MAX_TOP_LOGPROBS = 20
INCLUDABLE = (
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url",
    "code_interpreter_call.outputs", "reasoning.encrypted_content",
    "message.output_text.logprobs",
)
LOGPROBS = "message.output_text.logprobs"


@dataclass(frozen=True, slots=True)
class Tools:
    tools: tuple[FunctionTool, ...]
    choice: ToolChoice
    untranslated: tuple[Untranslated, ...]
    web_search: WebSearchTool | None = None


def decode_tools(document: Mapping[str, Any]) -> Tools:
    raw = document.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise invalid_type("tools", "an array", raw)
    given = _flat_tools(raw or [])
    searches = [(where, item) for where, item in given
                if isinstance(item, dict) and item.get("type") in WEB_SEARCH_TYPES
                and "." not in where]  # a namespace holds only functions
    given = [entry for entry in given if entry not in searches]
    search_untranslated = tuple(
        Untranslated(f"{where}.{key}", reason, droppable=True)
        for where, item in searches for key, reason in _SEARCH_TUNING.items()
        if item.get(key) is not None and not (key == "search_context_size"
                                              and item[key] == "medium"))
    web_search = WebSearchTool() if searches else None
    declared = [_function_tool(where, item) for where, item in given]
    tools = tuple(tool for tool, _ in declared)
    choice = _tool_choice(document.get("tool_choice"), tools)
    strict = [where for (where, _), (_, is_strict) in zip(given, declared, strict=True)
              if is_strict]
    if strict and len(strict) == len(tools) and choice.mode is ToolMode.AUTO:
        return Tools(tools, ToolChoice(ToolMode.VALIDATED, choice.allowed_names),
                     search_untranslated, web_search)
    untranslated = tuple(
        Untranslated(f"{where}.strict",
                     "strict schemas for only some functions cannot be carried", droppable=True)
        for where in strict
    )
    return Tools(tools, choice, (*untranslated, *search_untranslated), web_search)


def _flat_tools(raw: list[Any]) -> list[tuple[str, object]]:
    """Each tool with where it was given, namespace tools flattened in place (tool_namespaces);
    a flat name another tool also has is refused, as the model's calls could not be told
    apart."""
    flat: list[tuple[str, object]] = []
    grouped: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(raw):
        where = f"tools[{index}]"
        if isinstance(item, dict) and item.get("type") == "namespace":
            functions = flattened(where, item)
            grouped.extend(functions)
            flat.extend(functions)
        else:
            flat.append((where, item))
    names = [item.get("name") for _, item in flat if isinstance(item, dict)]
    for where, function in grouped:
        if function.get("type") == "function" and names.count(function["name"]) > 1:
            raise invalid_value(f"{where}.name", f"'{function['name']}', the name with its "
                                "namespace that the models here are given, is also the name "
                                "of another tool.")
    return flat


def built_in_refusal(where: str, kind: str) -> InvalidRequest:
    return InvalidRequest(
        f"The built-in tool '{kind}' is not supported by this gateway: it runs inside "
        "OpenAI's own service and the models here have no equivalent. Declare a function "
        "tool instead.",
        violations={f"{where}.type": f"built-in tool '{kind}' is not supported"})


def _function_tool(where: str, item: object) -> tuple[FunctionTool, bool]:
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = required_str(item, "type", f"{where}.type")
    if kind != "function":
        raise built_in_refusal(where, kind)
    name = required_str(item, "name", f"{where}.name")
    if not _NAME.fullmatch(name):
        raise invalid_value(f"{where}.name",
                            "expected a string of 1 to 64 letters, digits, '_' or '-'.")
    description = optional_str(item, "description", f"{where}.description")
    parameters = optional_object(item, "parameters", f"{where}.parameters")
    strict = optional_bool(item, "strict", f"{where}.strict")
    return FunctionTool(name, description or "", parameters), strict is True


def _tool_choice(raw: object, tools: tuple[FunctionTool, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice()
    if isinstance(raw, str):
        if raw not in _CHOICE_MODES:
            raise unsupported_value("tool_choice", raw, tuple(_CHOICE_MODES))
        if raw == "required" and not tools:
            raise invalid_value("tool_choice", "'required' needs at least one tool in 'tools'.")
        return ToolChoice(_CHOICE_MODES[raw])
    if not isinstance(raw, dict):
        raise invalid_type("tool_choice", "a string or an object", raw)
    kind = required_str(raw, "type", "tool_choice.type")
    if kind == "function":
        return ToolChoice(ToolMode.ANY, (_named(raw, "tool_choice", tools),))
    if kind == "allowed_tools":
        return _allowed_tools(raw, tools)
    raise built_in_refusal("tool_choice", kind)


def _named(choice: Mapping[str, Any], where: str, tools: tuple[FunctionTool, ...]) -> str:
    name = required_str(choice, "name", f"{where}.name")
    if name not in {tool.name for tool in tools}:
        raise invalid_value(f"{where}.name", f"no function named '{name}' is declared in "
                                             "'tools'.")
    return name


def _allowed_tools(choice: Mapping[str, Any], tools: tuple[FunctionTool, ...]) -> ToolChoice:
    mode = required_str(choice, "mode", "tool_choice.mode")
    if mode not in ("auto", "required"):
        raise unsupported_value("tool_choice.mode", mode, ("auto", "required"))
    listed = choice.get("tools")
    if not isinstance(listed, list) or not listed:
        raise invalid_value("tool_choice.tools", "expected a non-empty array.")
    names = []
    for index, item in enumerate(listed):
        where = f"tool_choice.tools[{index}]"
        if not isinstance(item, dict):
            raise invalid_type(where, "an object", item)
        kind = required_str(item, "type", f"{where}.type")
        if kind != "function":
            raise built_in_refusal(where, kind)
        names.append(_named(item, where, tools))
    return ToolChoice(_CHOICE_MODES[mode], tuple(names))


# --- generation parameters ---------------------------------------------------------------------


def decode_include(document: Mapping[str, Any]) -> tuple[str, ...]:
    raw = document.get("include")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_type("include", "an array of strings", raw)
    for index, value in enumerate(raw):
        if not isinstance(value, str):
            raise invalid_type(f"include[{index}]", "a string", value)
        if value not in INCLUDABLE:
            raise unsupported_value(f"include[{index}]", value, INCLUDABLE)
    return tuple(raw)


def decode_params(document: Mapping[str, Any], include: tuple[str, ...]) -> GenerationParams:
    top_logprobs = optional_int(document, "top_logprobs", 0, _MAX_TOP_LOGPROBS)
    return GenerationParams(
        temperature=optional_number(document, "temperature", 0.0, 2.0),
        top_p=optional_number(document, "top_p", 0.0, 1.0),
        max_output_tokens=optional_int(document, "max_output_tokens", _MIN_OUTPUT_TOKENS),
        response_logprobs=LOGPROBS in include,
        logprobs=top_logprobs if LOGPROBS in include else None,
    )


# --- output format and thinking ----------------------------------------------------------------


def decode_output(document: Mapping[str, Any]) -> tuple[OutputFormat | None, list[Untranslated]]:
    text = optional_object(document, "text")
    if text is None:
        return None, []
    untranslated = []
    verbosity = optional_str(text, "verbosity", "text.verbosity")
    if verbosity not in (None, "medium"):
        untranslated.append(Untranslated("text.verbosity", "verbosity is an OpenAI setting",
                                         droppable=True))
    spec = optional_object(text, "format", "text.format")
    if spec is None:
        return None, untranslated
    kind = required_str(spec, "type", "text.format.type")
    if kind == "text":
        return None, untranslated
    if kind == "json_object":
        return OutputFormat("json"), untranslated
    if kind != "json_schema":
        raise unsupported_value("text.format.type", kind, ("text", "json_object", "json_schema"))
    name = required_str(spec, "name", "text.format.name")
    if not _NAME.fullmatch(name):
        raise invalid_value("text.format.name",
                            "expected a string of 1 to 64 letters, digits, '_' or '-'.")
    optional_bool(spec, "strict", "text.format.strict")
    schema = optional_object(spec, "schema", "text.format.schema")
    if schema is None:
        raise missing("text.format.schema")
    return OutputFormat("json", schema), untranslated


def decode_thinking(document: Mapping[str, Any]) -> ThinkingConfig | None:
    reasoning = optional_object(document, "reasoning")
    if reasoning is None:
        return None
    effort = optional_str(reasoning, "effort", "reasoning.effort")
    summary = optional_str(reasoning, "summary", "reasoning.summary") or optional_str(
        reasoning, "generate_summary", "reasoning.generate_summary")
    if summary is not None and summary not in _SUMMARIES:
        raise unsupported_value("reasoning.summary", summary, _SUMMARIES)
    if effort == "none":
        return ThinkingConfig(budget=0)
    if effort is not None and effort not in LEVEL_BY_EFFORT:
        raise unsupported_value("reasoning.effort", effort, _EFFORTS)
    if effort is None and summary is None:
        return None
    return ThinkingConfig(include_thoughts=True if summary is not None else None,
                          level=LEVEL_BY_EFFORT[effort] if effort is not None else None)
