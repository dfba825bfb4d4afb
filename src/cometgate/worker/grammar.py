"""GBNF grammars that constrain sampling: JSON schemas, any JSON object, and tool calls.

Tool calls take the form `<tool_call>{"name": "<name>", "arguments": {…}}</tool_call>`, the form
the prompt teaches (tool_markup.py). With a grammar the model cannot emit a malformed call, an
unknown function name, or arguments that do not validate against the function's schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cometgate.worker.schema_grammar import (
    GrammarRules,
    SchemaConverter,
    gbnf_literal,
    json_literal,
)
from cometgate.worker.tool_markup import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

# A looping small model could otherwise emit calls forever; no real turn needs more than this.
MAX_PARALLEL_CALLS = 8


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One callable function: its name and the JSON Schema of its arguments object."""

    name: str
    parameters: Mapping[str, Any]


def json_schema_grammar(schema: object) -> str:
    """Grammar for JSON text valid under `schema` (whose root may be any type)."""
    rules = GrammarRules()
    root = SchemaConverter(rules, schema, "s").expression(schema)
    return rules.render(root)


def json_object_grammar() -> str:
    """Grammar for any JSON object (OpenAI's `response_format: json_object`)."""
    return GrammarRules().render("j-object")


def tool_call_grammar(
    functions: Sequence[FunctionSpec], *, parallel: bool, allow_text: bool
) -> str:
    """Grammar for one tool call (or up to MAX_PARALLEL_CALLS, newline-separated, when
    `parallel`) to one of `functions`; with `allow_text`, alternatively free text that does not
    begin with the tool-call tag."""
    if not functions:
        raise ValueError("a tool-call grammar needs at least one function")
    rules = GrammarRules()
    choices = [_function_rule(rules, i, spec) for i, spec in enumerate(functions)]
    call = rules.add(
        "call",
        f'{gbnf_literal(TOOL_CALL_OPEN)} "\\n"? "{{" sp "\\"name\\":" sp '
        f'({" | ".join(choices)}) "}}" "\\n"? {gbnf_literal(TOOL_CALL_CLOSE)}',
    )
    calls = f'{call} ("\\n" {call}){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else call
    if not allow_text:
        return rules.render(calls)
    text = rules.add("text", _text_not_starting_with(TOOL_CALL_OPEN))
    return rules.render(f"{calls} | {text}")


def _function_rule(rules: GrammarRules, index: int, spec: FunctionSpec) -> str:
    schema: Mapping[str, Any] = spec.parameters or {"type": "object", "properties": {}}
    arguments = SchemaConverter(rules, schema, f"f{index}").expression(schema)
    return rules.add(
        f"f{index}-call",
        f'{json_literal(spec.name)} "," sp "\\"arguments\\":" sp {arguments}',
    )


def _text_not_starting_with(tag: str) -> str:
    """Any text (possibly empty) except text that starts with `tag`: every proper prefix of the
    tag may be followed by anything but the tag's next character."""
    anything = r"[^\x00]*"
    options = ['""']
    for i, char in enumerate(tag):
        head = gbnf_literal(tag[:i]) + " " if i else ""
        options.append(f"{head}{_not_char(char)} {anything}")
        if i:
            options.append(gbnf_literal(tag[:i]))
    return " | ".join(options)


def _not_char(char: str) -> str:
    escaped = char.replace("\\", "\\\\").replace("]", "\\]").replace("^", "\\^")
    return rf"[^{escaped}\x00]"
