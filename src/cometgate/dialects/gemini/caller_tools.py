"""Gemini tools, tool config and safety settings (normalised) → canonical tools and choice.

Function names follow the rule of the current API reference for FunctionDeclaration.name:
start with a letter or underscore, then letters, digits, underscores, dots, colons or dashes,
at most 128 characters (older versions of that page said 64).
"""

from __future__ import annotations

import re
from typing import Any

from cometgate.canonical import FunctionTool, ToolChoice, ToolMode, WebSearchTool
from cometgate.dialects.gemini.caller_context import DecodeContext
from cometgate.dialects.gemini.caller_openapi_schema import to_json_schema
from cometgate.dialects.gemini.protojson import Normalised, to_json
from cometgate.dialects.gemini.schema import message_type
from cometgate.dialects.schema_check import schema_violation

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,127}")
_NAME_RULE = (
    "Invalid function name. Must start with a letter or an underscore. Must be alphameric "
    "(a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum "
    "length of 128."
)
# codeExecution is canonical (`GenerateRequest.code_execution`): the pipeline decides which
# upstream can run it and refuses where none can.
_CODE_EXECUTION = "codeExecution"
_BUILTIN_REASONS = {
    "googleSearch": "Google Search grounding is only available on Gemini models",
    "googleSearchRetrieval": "Google Search retrieval is only available on Gemini models",
    _CODE_EXECUTION: "code execution is only available on Gemini models",
    "urlContext": "URL context is only available on Gemini models",
    "googleMaps": "Google Maps grounding is only available on Gemini models",
    "fileSearch": "file search is only available on Gemini models",
    "computerUse": "computer use is only available on Gemini models",
    "mcpServers": "remote MCP servers are only available on Gemini models",
}
# Built-in tools that ask for a web search (canonical `WebSearchTool`).
_SEARCH_TOOLS = frozenset({"googleSearch", "googleSearchRetrieval"})
# Built-in tools the canonical request names (GenerateRequest.url_context, .google_maps): the
# gateway serves URL context itself where the upstream cannot, and refuses Maps where the
# upstream has none, naming the models that have it.
CANONICAL_TOOLS = frozenset({"urlContext", "googleMaps"})
_MODES = {
    "MODE_UNSPECIFIED": ToolMode.AUTO,
    "AUTO": ToolMode.AUTO,
    "ANY": ToolMode.ANY,
    "NONE": ToolMode.NONE,
    "VALIDATED": ToolMode.VALIDATED,
}
_TOOL = message_type("Tool")
_DECLARATION = message_type("FunctionDeclaration")
_TOOL_CONFIG = message_type("ToolConfig")
_RESPONSE_HINTS = ("response", "responseJsonSchema", "behavior")
_BUILTIN_TUNING = ("retrievalConfig", "includeServerSideToolInvocations")
# Proto names of the fields above: a tool or declaration with none of them needs no rendering.
_BUILTIN_FIELDS = frozenset(s.proto_name for s in _TOOL.fields if s.json_name in _BUILTIN_REASONS)
_RESPONSE_HINT_FIELDS = frozenset(
    s.proto_name for s in _DECLARATION.fields if s.json_name in _RESPONSE_HINTS
)


def decode_tools(tools: list[Normalised], ctx: DecodeContext) -> tuple[FunctionTool, ...]:
    functions: list[FunctionTool] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not _BUILTIN_FIELDS.isdisjoint(tool):
            _record_builtin_tools(tool, i, ctx)
        for j, declaration in enumerate(tool.get("function_declarations", [])):
            path = f"tools[{i}].function_declarations[{j}]"
            function = _decode_declaration(declaration, path, ctx)
            if function.name in seen:
                ctx.violation(f"{path}.name", f"Duplicate function declaration: {function.name}")
            seen.add(function.name)
            functions.append(function)
    return tuple(functions)


def _record_builtin_tools(tool: Normalised, index: int, ctx: DecodeContext) -> None:
    rendered = to_json(_TOOL, tool, only=_BUILTIN_REASONS)
    for camel, reason in _BUILTIN_REASONS.items():
        if camel in rendered:
            if camel in _SEARCH_TOOLS:
                _record_search(f"tools[{index}].{camel}", rendered[camel], ctx)
            elif camel in CANONICAL_TOOLS:
                # The Gemini JSON still rides in the extensions, for a Gemini upstream.
                ctx.kept_field(f"tools[{index}].{camel}", rendered[camel])
                ctx.canonical_tools.add(camel)
            elif camel == _CODE_EXECUTION:
                ctx.code_execution = True
            else:
                ctx.untranslated_field(
                    f"tools[{index}].{camel}", reason, rendered[camel], droppable=False
                )
            ctx.builtin_tools.append({camel: rendered[camel]})


def _record_search(path: str, raw: Any, ctx: DecodeContext) -> None:
    """Google Search grounding has a canonical meaning (a web search for the model), so any
    upstream with a search, or the gateway's own, can serve it; the legacy retrieval tool
    means the same. The Gemini JSON still rides in the extensions for a Gemini upstream."""
    ctx.kept_field(path, raw)
    if ctx.web_search is None:
        ctx.web_search = WebSearchTool(path=path)


def _decode_declaration(declaration: Normalised, path: str, ctx: DecodeContext) -> FunctionTool:
    name = declaration.get("name", "")
    if not _NAME.fullmatch(name):
        ctx.violation(f"{path}.name", _NAME_RULE)
    parameters: dict[str, Any] | None = None
    if "parameters" in declaration and "parameters_json_schema" in declaration:
        ctx.violation(
            f"{path}.parameters", "parameters and parameters_json_schema cannot both be set."
        )
    elif "parameters" in declaration:
        parameters = to_json_schema(declaration["parameters"])
    elif "parameters_json_schema" in declaration:
        raw = declaration["parameters_json_schema"]
        problem = schema_violation(raw, f"{path}.parameters_json_schema")
        if not isinstance(raw, dict):
            ctx.violation(f"{path}.parameters_json_schema", "must be a JSON object.")
        elif problem is not None:
            ctx.violation(*problem)
        else:
            parameters = raw
    _record_response_hints(declaration, path, ctx)
    return FunctionTool(
        name=name, description=declaration.get("description", ""), parameters=parameters
    )


def _record_response_hints(declaration: Normalised, path: str, ctx: DecodeContext) -> None:
    # Response schemas and blocking behaviour only inform Gemini's own planning: dropping them
    # elsewhere does not change what a call means.
    if _RESPONSE_HINT_FIELDS.isdisjoint(declaration):
        return
    rendered = to_json(_DECLARATION, declaration, only=_RESPONSE_HINTS)
    camel_path = path.replace("function_declarations", "functionDeclarations")
    for camel in _RESPONSE_HINTS:
        if camel in rendered:
            ctx.untranslated_field(
                f"{camel_path}.{camel}",
                f"{camel} is a Gemini-only hint",
                rendered[camel],
                droppable=True,
            )


def decode_tool_config(
    config: Normalised, functions: tuple[FunctionTool, ...], ctx: DecodeContext
) -> ToolChoice:
    rendered = to_json(_TOOL_CONFIG, config, only=_BUILTIN_TUNING)
    for camel in _BUILTIN_TUNING:
        if camel in rendered:
            ctx.untranslated_field(
                f"toolConfig.{camel}",
                f"{camel} only tunes Gemini's built-in tools",
                rendered[camel],
                droppable=True,
            )
    calling = config.get("function_calling_config")
    if calling is None:
        return ToolChoice()
    mode = _MODES[calling.get("mode", "MODE_UNSPECIFIED")]
    names = tuple(calling.get("allowed_function_names", ()))
    path = "tool_config.function_calling_config.allowed_function_names"
    if names and mode not in (ToolMode.ANY, ToolMode.VALIDATED):
        ctx.violation(path, "allowed_function_names may only be set when mode is ANY or VALIDATED.")
    declared = {function.name for function in functions}
    for name in names:
        if name not in declared:
            ctx.violation(path, f"function name '{name}' is not declared in tools.")
    return ToolChoice(mode=mode, allowed_names=names)
