"""Anthropic Messages requests (POST /v1/messages, /v1/messages/count_tokens) → canonical.

    field                                   canonical
    model                                   model (the alias the caller asked for)
    system, messages                        system, messages (see `caller_messages`)
    max_tokens (≥ 1)                        params.max_output_tokens; required by /v1/messages
    temperature [0, 1], top_p [0, 1],       params
      top_k ≥ 0, stop_sequences
    tools: custom (input_schema)            FunctionTool(name, description, input_schema)
    tools: Anthropic's own (web_search,     untranslated, not droppable: only Anthropic runs
      code_execution, bash, text_editor…)     them or knows their schemas
    tool_choice auto / any / none           ToolChoice AUTO / ANY / NONE
    tool_choice tool {name}                 ToolChoice ANY, allowed_names (name)
    tool_choice.disable_parallel_tool_use   untranslated, droppable (no other model promises
                                              a single call)
    thinking enabled {budget_tokens ≥ 1024} ThinkingConfig(budget, include_thoughts=True)
    thinking disabled                       ThinkingConfig(budget=0)
    thinking adaptive                       ThinkingConfig(level=<output_config.effort>,
                                              include_thoughts=True); without an effort,
                                              budget -1 (the model decides)
    thinking.display "omitted"              untranslated, droppable (thoughts are shown)
    output_config.effort, without adaptive  untranslated, droppable (effort alone does not
      thinking                                turn thinking on)
    output_config.format, output_format     OutputFormat("json", schema)
      ({type: json_schema, schema})
    stream                                  ignored (the route's to read, `wants_stream`)
    context_management, metadata,           untranslated, droppable: they steer only
      service_tier, cache_control (here       Anthropic's own service (context editing, abuse
      and on any block or tool), speed,       tracking, capacity tier, prompt caching, fast
      diagnostics, the anthropic-beta         mode, cache diagnostics, beta features); no
      header                                  other model's answer depends on them
    anything else                           untranslated, not droppable; its value rides in
                                              extensions["anthropic"] for an Anthropic upstream

Effort "max" becomes level XHIGH, the highest canonical level. The canonical request holds a
single candidate: this dialect has no way to ask for more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import (
    JSON,
    FunctionTool,
    GenerateRequest,
    GenerationParams,
    OutputFormat,
    ThinkingConfig,
    ToolChoice,
    ToolMode,
    Untranslated,
)
from cometgate.canonical.thinking_levels import LEVEL_OF_ANTHROPIC_EFFORT
from cometgate.dialects.anthropic.caller_fields import (
    array,
    boolean,
    integer,
    invalid,
    mapping,
    number,
    string,
    tagged,
)
from cometgate.dialects.anthropic.caller_messages import (
    CACHE_CONTROL,
    CACHING,
    decode_messages,
    decode_system,
    note_unknown,
)
from cometgate.dialects.estimate import estimated_tokens
from cometgate.dialects.schema_check import schema_violation
from cometgate.errors import InvalidRequest

_READ = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "output_config", "output_format",
})
_IGNORED = frozenset({"stream"})
_DROPPABLE = {
    "speed": "fast output mode is an Anthropic service option",
    "diagnostics": "prompt-cache diagnostics come only from Anthropic",
    "context_management": "context editing is a service of Anthropic's own API",
    "metadata": "request metadata is read only by Anthropic's own API",
    "service_tier": "capacity tiers are Anthropic's own",
    CACHE_CONTROL: CACHING,
}
BETA_HEADER = "anthropic-beta"
_BETA = "beta features are switched on only in Anthropic's own API"
_FOREIGN = "only Anthropic's own API understands this field"
_EFFORT_LEVEL = LEVEL_OF_ANTHROPIC_EFFORT
_MIN_BUDGET = 1024
_TOOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_TOOL_KEYS = {"type", "name", "description", "input_schema"}
_MEDIA_BLOCKS = ("image", "document")


def read_messages_document(body: bytes, *, require_max_tokens: bool = True) -> dict[str, Any]:
    """The request's JSON object, with `model`, a non-empty `messages` list and (for
    /v1/messages, not for count_tokens) an integer `max_tokens` ≥ 1 checked."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("There was an error parsing the body of your request as JSON."
                             ) from None
    if not isinstance(document, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    string(document.get("model"), "model")
    if not array(document.get("messages"), "messages"):
        raise invalid("messages", "at least one message is required")
    if require_max_tokens:
        integer(document.get("max_tokens"), "max_tokens", minimum=1)
    return document


def decode_messages_request(document: Mapping[str, Any], *,
                            beta: str | None = None) -> GenerateRequest:
    """Raises InvalidRequest (Anthropic's wording, violations keyed by the dotted field path)
    for what Anthropic itself would refuse. `beta`: the anthropic-beta header, if sent."""
    untranslated: list[Untranslated] = []
    if beta:
        untranslated.append(Untranslated(BETA_HEADER, _BETA, droppable=True))
    foreign = _top_level_foreign(document, untranslated)
    tools = _tools(document.get("tools"), untranslated)
    params = _params(document)
    thinking = _thinking(document, untranslated)
    _check_budget(thinking, params)
    return GenerateRequest(
        model=string(document.get("model"), "model"),
        messages=decode_messages(document.get("messages"), untranslated),
        system=decode_system(document.get("system"), untranslated),
        tools=tools,
        tool_choice=_tool_choice(document.get("tool_choice"), tools, untranslated),
        params=params,
        output=_output(document, untranslated),
        thinking=thinking,
        extensions={"anthropic": foreign} if foreign else {},
        untranslated=tuple(untranslated),
    )


def estimate_messages(document: Mapping[str, Any]) -> tuple[int, int | None]:
    """(a cheap upper estimate of the prompt's tokens, max_tokens if the caller set it)."""
    counted = [document.get("system"), document.get("messages"), document.get("tools")]
    max_tokens = document.get("max_tokens")
    limit = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) \
        and max_tokens > 0 else None
    return estimated_tokens(counted, _is_media), limit


def _is_media(block: Mapping[str, Any]) -> bool:
    return block.get("type") in _MEDIA_BLOCKS and isinstance(block.get("source"), dict)


def wants_stream(document: Mapping[str, Any]) -> bool:
    value = document.get("stream")
    return False if value is None else boolean(value, "stream")


def _top_level_foreign(document: Mapping[str, Any],
                       untranslated: list[Untranslated]) -> dict[str, JSON]:
    foreign: dict[str, JSON] = {}
    for key, value in document.items():
        if key in _READ or key in _IGNORED or value is None:
            continue
        reason = _DROPPABLE.get(key)
        untranslated.append(Untranslated(key, reason or _FOREIGN, droppable=reason is not None))
        foreign[key] = value
    return foreign


def _tools(value: object, untranslated: list[Untranslated]) -> tuple[FunctionTool, ...]:
    if value is None:
        return ()
    tools: list[FunctionTool] = []
    for index, raw in enumerate(array(value, "tools")):
        path = f"tools.{index}"
        tool = mapping(raw, path)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            untranslated.append(Untranslated(
                path, f"the {kind} tool is defined and run by Anthropic itself"))
            continue
        tools.append(_custom_tool(tool, path, untranslated))
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        raise invalid("tools", "Tool names must be unique.")
    return tuple(tools)


def _custom_tool(tool: Mapping[str, Any], path: str,
                 untranslated: list[Untranslated]) -> FunctionTool:
    name = string(tool.get("name"), f"{path}.name")
    if not name or len(name) > 128 or not set(name) <= _TOOL_NAME_CHARS:
        raise invalid(f"{path}.name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
    description = tool.get("description")
    description = "" if description is None else string(description, f"{path}.description")
    schema = mapping(tool.get("input_schema"), f"{path}.input_schema")
    if schema.get("type") != "object":
        raise invalid(f"{path}.input_schema.type", "Input should be 'object'")
    _check_schema(schema, f"{path}.input_schema")
    # strict, input_examples, defer_loading and kin tune how the tool is offered, not what
    # it does: without them the tool is still the same tool.
    for key, value in tool.items():
        if key not in _TOOL_KEYS and value is not None:
            reason = CACHING if key == CACHE_CONTROL else _FOREIGN
            untranslated.append(Untranslated(f"{path}.{key}", reason, droppable=True))
    return FunctionTool(name, description, dict(schema))


def _tool_choice(value: object, tools: tuple[FunctionTool, ...],
                 untranslated: list[Untranslated]) -> ToolChoice:
    if value is None:
        return ToolChoice()
    choice, kind = tagged(value, "tool_choice", ("auto", "any", "tool", "none"))
    single = choice.get("disable_parallel_tool_use")
    if single is not None and boolean(single, "tool_choice.disable_parallel_tool_use"):
        untranslated.append(Untranslated(
            "tool_choice.disable_parallel_tool_use",
            "other models cannot be held to a single tool call", droppable=True))
    if kind == "tool":
        name = string(choice.get("name"), "tool_choice.name")
        if name not in {tool.name for tool in tools}:
            raise invalid("tool_choice.name", f"Tool '{name}' not found in provided tools")
        return ToolChoice(ToolMode.ANY, (name,))
    return ToolChoice({"auto": ToolMode.AUTO, "any": ToolMode.ANY, "none": ToolMode.NONE}[kind])


def _thinking(document: Mapping[str, Any],
              untranslated: list[Untranslated]) -> ThinkingConfig | None:
    effort = _effort(document.get("output_config"))
    value = document.get("thinking")
    if value is None:
        _effort_unused(effort, untranslated)
        return None
    config, kind = tagged(value, "thinking", ("enabled", "disabled", "adaptive"))
    display = config.get("display")
    if display is not None and display not in ("summarized", "omitted"):
        raise invalid("thinking.display", "Input should be 'summarized' or 'omitted'")
    if display == "omitted":
        untranslated.append(Untranslated(
            "thinking.display", "other models show their thinking or none of it",
            droppable=True))
    if kind == "adaptive":
        if effort is None:
            return ThinkingConfig(include_thoughts=True, budget=-1)
        return ThinkingConfig(include_thoughts=True, level=_EFFORT_LEVEL[effort])
    _effort_unused(effort, untranslated)
    if kind == "disabled":
        return ThinkingConfig(budget=0)
    budget = integer(config.get("budget_tokens"), "thinking.budget_tokens", minimum=_MIN_BUDGET)
    return ThinkingConfig(include_thoughts=True, budget=budget)


def _effort(value: object) -> str | None:
    if value is None:
        return None
    effort = mapping(value, "output_config").get("effort")
    if effort is None:
        return None
    if effort not in _EFFORT_LEVEL:
        raise invalid("output_config.effort",
                      "Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    return str(effort)


def _effort_unused(effort: str | None, untranslated: list[Untranslated]) -> None:
    if effort is not None:
        untranslated.append(Untranslated(
            "output_config.effort", "an effort without adaptive thinking has no equivalent "
            "on other models", droppable=True))


def _check_budget(thinking: ThinkingConfig | None, params: GenerationParams) -> None:
    limit = params.max_output_tokens
    if thinking is None or thinking.budget is None or thinking.budget <= 0 or limit is None:
        return
    if thinking.budget >= limit:
        raise invalid("max_tokens", "`max_tokens` must be greater than `thinking.budget_tokens`")


def _output(document: Mapping[str, Any], untranslated: list[Untranslated]) -> OutputFormat | None:
    formats: list[OutputFormat] = []
    config = document.get("output_config")
    if config is not None:
        fields = mapping(config, "output_config")
        note_unknown(fields, {"effort", "format"}, "output_config", untranslated)
        if fields.get("format") is not None:
            formats.append(_json_schema(fields["format"], "output_config.format"))
    if document.get("output_format") is not None:
        formats.append(_json_schema(document["output_format"], "output_format"))
    if len(formats) > 1:
        raise invalid("output_format", "cannot be combined with output_config.format")
    return formats[0] if formats else None


def _json_schema(value: object, path: str) -> OutputFormat:
    fields, _ = tagged(value, path, ("json_schema",))
    schema = mapping(fields.get("schema"), f"{path}.schema")
    _check_schema(schema, f"{path}.schema")
    return OutputFormat("json", dict(schema))


def _check_schema(schema: Mapping[str, Any], path: str) -> None:
    problem = schema_violation(schema, path)
    if problem is not None:
        raise invalid(*problem)


def _params(document: Mapping[str, Any]) -> GenerationParams:
    return GenerationParams(
        temperature=_fraction(document, "temperature"),
        top_p=_fraction(document, "top_p"),
        top_k=_count(document, "top_k", minimum=0),
        max_output_tokens=_count(document, "max_tokens", minimum=1),
        stop_sequences=_stop_sequences(document.get("stop_sequences")),
    )


def _fraction(document: Mapping[str, Any], key: str) -> float | None:
    value = document.get(key)
    return None if value is None else number(value, key, low=0.0, high=1.0)


def _count(document: Mapping[str, Any], key: str, *, minimum: int) -> int | None:
    value = document.get(key)
    return None if value is None else integer(value, key, minimum=minimum)


def _stop_sequences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(string(item, f"stop_sequences.{index}")
                 for index, item in enumerate(array(value, "stop_sequences")))
