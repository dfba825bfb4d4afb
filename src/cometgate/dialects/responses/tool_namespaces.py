"""Namespace tools, for upstreams that know only flat function tools.

A Responses caller may group function tools under a name (`{"type": "namespace", "name": "crm",
"description", "tools": [function tools]}`); the model then calls `name` within `namespace`, and
the call item carries both (`{"type": "function_call", "namespace": "crm", "name": "lookup"}`).
No upstream here has such groups, so each function is declared flat as
`<namespace>__<function>`: "__" because it is the one separator every upstream's tool names
accept (OpenAI and Anthropic allow only letters, digits, '_' and '-'), and the whole name keeps
their 64-character limit. The flat name is mapped back through the request's own declarations,
never by splitting, so a plain function whose name happens to hold "__" stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cometgate.dialects.openai.caller_fields import invalid_type, invalid_value, required_str

SEPARATOR = "__"
_NAMESPACE = re.compile(r"[a-zA-Z0-9_-]+")
_MAX_NAME = 64


def flat_name(namespace: str, name: str) -> str:
    return f"{namespace}{SEPARATOR}{name}"


def flattened(where: str, item: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The functions of a namespace tool as flat function tools, each with where it was given;
    the namespace's description leads each function's own, since the model sees no group."""
    namespace = required_str(item, "name", f"{where}.name")
    if not _NAMESPACE.fullmatch(namespace):
        raise invalid_value(f"{where}.name", "expected a string of letters, digits, '_' or '-'.")
    functions = item.get("tools")
    if not isinstance(functions, list) or not functions:
        raise invalid_value(f"{where}.tools", "expected a non-empty array of function tools.")
    about = item.get("description")
    if about is not None and not isinstance(about, str):
        raise invalid_type(f"{where}.description", "a string", about)
    flat = []
    for index, function in enumerate(functions):
        inner = f"{where}.tools[{index}]"
        if not isinstance(function, dict):
            raise invalid_type(inner, "an object", function)
        if function.get("type") != "function":
            flat.append((inner, function))  # refused by its type where every tool is read
            continue
        name = required_str(function, "name", f"{inner}.name")
        if len(flat_name(namespace, name)) > _MAX_NAME:
            raise invalid_value(f"{inner}.name", f"'{flat_name(namespace, name)}', the name "
                                "with its namespace that the models here are given, is longer "
                                f"than {_MAX_NAME} characters.")
        description = function.get("description")
        joined = "\n\n".join(text for text in (about, description) if isinstance(text, str)
                             and text)
        flat.append((inner, {**function, "name": flat_name(namespace, name),
                             "description": joined or None}))
    return flat


def namespaced_names(tools: object) -> dict[str, tuple[str, str]]:
    """Flat name → (namespace, function name), for every function of the namespace tools among
    a request's `tools` (already validated by decode_tools)."""
    found: dict[str, tuple[str, str]] = {}
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            namespace = str(tool["name"])
            for function in tool["tools"]:
                if function.get("type") == "function":
                    name = str(function["name"])
                    found[flat_name(namespace, name)] = (namespace, name)
    return found
