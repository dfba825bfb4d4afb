"""The settings of an OpenAI chat request → canonical tools, tool choice, generation params,
output format and thinking.

Ranges are OpenAI's: temperature [0, 2], top_p [0, 1], presence and frequency penalties
[-2, 2], n [1, 128], top_logprobs [0, 20] (only with logprobs: true), at most 4 stop
sequences, max_tokens and max_completion_tokens ≥ 1 (the latter wins: it replaced the former,
and reasoning models accept only it). `top_k`, which OpenAI itself refuses, is taken as vLLM,
llama.cpp and Ollama take it, since the canonical request has a place for it.

reasoning_effort → thinking: "none" is a budget of 0 (off); every other effort is a level
(`reasoning_effort.LEVEL_BY_EFFORT`) with thoughts included, so that upstream reasoning
reaches the caller as `reasoning_content`, as OpenAI-compatible reasoning servers send it.

Function tools marked `strict` ask for calls that match their schemas: when every tool is
strict and the choice is "auto", that is the canonical VALIDATED mode; otherwise strictness
cannot be carried and is reported (droppable).
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
from cometgate.dialects.schema_check import schema_violation
from cometgate.errors import InvalidRequest

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_STOP_SEQUENCES = 4
_MAX_CHOICES = 128
_MAX_TOP_LOGPROBS = 20
_CHOICE_MODES = {"auto": ToolMode.AUTO, "none": ToolMode.NONE, "required": ToolMode.ANY}
_EFFORTS = ("none", *LEVEL_BY_EFFORT)


@dataclass(frozen=True, slots=True)
class Tools:
    tools: tuple[FunctionTool, ...]
    choice: ToolChoice
    untranslated: tuple[Untranslated, ...]


def decode_tools(document: Mapping[str, Any]) -> Tools:
    raw = document.get("tools")
    if raw is not None and not isinstance(raw, list):
        raise invalid_type("tools", "an array", raw)
    declared = [_function_tool(f"tools[{index}]", item) for index, item in enumerate(raw or [])]
    tools = tuple(tool for tool, _ in declared)
    choice = _tool_choice(document.get("tool_choice"), tools)
    strict = [index for index, (_, is_strict) in enumerate(declared) if is_strict]
    if strict and len(strict) == len(tools) and choice.mode is ToolMode.AUTO:
        return Tools(tools, ToolChoice(ToolMode.VALIDATED, choice.allowed_names), ())
    untranslated = tuple(
        Untranslated(f"tools[{index}].function.strict",
                     "strict schemas for only some functions cannot be carried", droppable=True)
        for index in strict
    )
    return Tools(tools, choice, untranslated)


def _function_tool(where: str, item: object) -> tuple[FunctionTool, bool]:
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = required_str(item, "type", f"{where}.type")
    if kind != "function":
        raise unsupported_value(f"{where}.type", kind, ("function",))
    function = optional_object(item, "function", f"{where}.function")
    if function is None:
        raise missing(f"{where}.function")
    name = required_str(function, "name", f"{where}.function.name")
    if not _NAME.fullmatch(name):
        raise invalid_value(f"{where}.function.name",
                            "expected a string of 1 to 64 letters, digits, '_' or '-'.")
    description = optional_str(function, "description", f"{where}.function.description")
    parameters = _schema(optional_object(function, "parameters", f"{where}.function.parameters"),
                         f"{where}.function.parameters")
    strict = optional_bool(function, "strict", f"{where}.function.strict")
    return FunctionTool(name, description or "", parameters), strict is True


def _tool_choice(raw: object, tools: tuple[FunctionTool, ...]) -> ToolChoice:
    if raw is None:
        return ToolChoice()
    if not tools:
        raise invalid_value("tool_choice", "'tool_choice' is only allowed when 'tools' are "
                                           "specified.")
    if isinstance(raw, str):
        if raw not in _CHOICE_MODES:
            raise unsupported_value("tool_choice", raw, tuple(_CHOICE_MODES))
        return ToolChoice(_CHOICE_MODES[raw])
    if not isinstance(raw, dict):
        raise invalid_type("tool_choice", "a string or an object", raw)
    kind = required_str(raw, "type", "tool_choice.type")
    if kind == "function":
        return ToolChoice(ToolMode.ANY, (_named(raw, "tool_choice", tools),))
    if kind == "allowed_tools":
        return _allowed_tools(raw, tools)
    raise unsupported_value("tool_choice.type", kind, ("function", "allowed_tools"))


def _named(choice: Mapping[str, Any], where: str, tools: tuple[FunctionTool, ...]) -> str:
    function = optional_object(choice, "function", f"{where}.function")
    if function is None:
        raise missing(f"{where}.function")
    name = required_str(function, "name", f"{where}.function.name")
    if name not in {tool.name for tool in tools}:
        raise invalid_value(f"{where}.function.name",
                            f"no function named '{name}' is declared in 'tools'.")
    return name


def _allowed_tools(choice: Mapping[str, Any], tools: tuple[FunctionTool, ...]) -> ToolChoice:
    allowed = optional_object(choice, "allowed_tools", "tool_choice.allowed_tools")
    if allowed is None:
        raise missing("tool_choice.allowed_tools")
    mode = required_str(allowed, "mode", "tool_choice.allowed_tools.mode")
    if mode not in ("auto", "required"):
        raise unsupported_value("tool_choice.allowed_tools.mode", mode, ("auto", "required"))
    listed = allowed.get("tools")
    if not isinstance(listed, list) or not listed:
        raise invalid_value("tool_choice.allowed_tools.tools", "expected a non-empty array.")
    names = tuple(_allowed_name(f"tool_choice.allowed_tools.tools[{index}]", item, tools)
                  for index, item in enumerate(listed))
    return ToolChoice(_CHOICE_MODES[mode], names)


def _allowed_name(where: str, item: object, tools: tuple[FunctionTool, ...]) -> str:
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = required_str(item, "type", f"{where}.type")
    if kind != "function":
        raise unsupported_value(f"{where}.type", kind, ("function",))
    return _named(item, where, tools)


# --- generation parameters ---------------------------------------------------------------------


def decode_params(document: Mapping[str, Any]) -> GenerationParams:
    max_tokens = optional_int(document, "max_tokens", 1)
    max_completion = optional_int(document, "max_completion_tokens", 1)
    response_logprobs = optional_bool(document, "logprobs") or False
    top_logprobs = optional_int(document, "top_logprobs", 0, _MAX_TOP_LOGPROBS)
    if top_logprobs is not None and not response_logprobs:
        raise invalid_value("top_logprobs", "'logprobs' must be set to true when "
                                            "'top_logprobs' is used.")
    return GenerationParams(
        temperature=optional_number(document, "temperature", 0.0, 2.0),
        top_p=optional_number(document, "top_p", 0.0, 1.0),
        top_k=optional_int(document, "top_k", 1),
        max_output_tokens=max_completion if max_completion is not None else max_tokens,
        stop_sequences=_stop(document.get("stop")),
        seed=optional_int(document, "seed", -(2**63), 2**63 - 1),
        presence_penalty=optional_number(document, "presence_penalty", -2.0, 2.0),
        frequency_penalty=optional_number(document, "frequency_penalty", -2.0, 2.0),
        candidate_count=optional_int(document, "n", 1, _MAX_CHOICES) or 1,
        response_logprobs=response_logprobs,
        logprobs=top_logprobs,
    )


def _stop(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise invalid_type("stop", "a string or an array of strings", raw)
    if len(raw) > _MAX_STOP_SEQUENCES:
        raise invalid_value("stop", f"expected an array with maximum length "
                                    f"{_MAX_STOP_SEQUENCES}, but got {len(raw)} items instead.")
    return tuple(raw)


# --- output format and thinking ----------------------------------------------------------------


def decode_output(document: Mapping[str, Any]) -> OutputFormat | None:
    response_format = optional_object(document, "response_format")
    if response_format is None:
        return None
    kind = required_str(response_format, "type", "response_format.type")
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json")
    if kind != "json_schema":
        raise unsupported_value("response_format.type", kind,
                                ("text", "json_object", "json_schema"))
    spec = optional_object(response_format, "json_schema", "response_format.json_schema")
    if spec is None:
        raise missing("response_format.json_schema")
    name = required_str(spec, "name", "response_format.json_schema.name")
    if not _NAME.fullmatch(name):
        raise invalid_value("response_format.json_schema.name",
                            "expected a string of 1 to 64 letters, digits, '_' or '-'.")
    optional_bool(spec, "strict", "response_format.json_schema.strict")
    where = "response_format.json_schema.schema"
    return OutputFormat("json", _schema(optional_object(spec, "schema", where), where))


def _schema(schema: dict[str, Any] | None, param: str) -> dict[str, Any] | None:
    """A caller's JSON Schema, refused here when malformed (`param` names the keyword)."""
    problem = None if schema is None else schema_violation(schema, param)
    if problem is not None:
        raise InvalidRequest(problem[1], violations={problem[0]: problem[1]})
    return schema


def decode_thinking(document: Mapping[str, Any]) -> ThinkingConfig | None:
    effort = optional_str(document, "reasoning_effort")
    if effort is None:
        return None
    if effort == "none":
        return ThinkingConfig(budget=0)
    level = LEVEL_BY_EFFORT.get(effort)
    if level is None:
        raise unsupported_value("reasoning_effort", effort, _EFFORTS)
    return ThinkingConfig(include_thoughts=True, level=level)
