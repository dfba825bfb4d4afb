"""Rendering OpenAI-style messages (and declared tools) into the model's prompt text.

The chat template is the one stored in the GGUF (`tokenizer.chat_template`), so another GGUF file
brings its own format. Invariants of the message list handed to the template, which keep
alternation-strict templates working:
- at most one system message, first; every system/developer message is merged into it, followed
  by the tool instructions when tools are offered;
- tool results become user turns made of `<tool_response>` blocks; earlier assistant calls are
  rendered as `<tool_call>` blocks in the assistant turn;
- consecutive turns of the same role are merged, so user and assistant alternate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import jinja2
import orjson
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cometgate.worker.request import ChatMessage, Tool
from cometgate.worker.tool_markup import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    render_tool_call,
    render_tool_response,
)

# Short on purpose: the bundled model has 135M parameters and a long preamble drowns it.
TOOL_INSTRUCTIONS = (
    "You can call these functions:\n{functions}\n"
    "To call a function, reply with only "
    + TOOL_CALL_OPEN
    + '{{"name": <function name>, "arguments": <JSON object>}}'
    + TOOL_CALL_CLOSE
)


class TemplateError(ValueError):
    """The chat template failed to render these messages (it raised, or is malformed)."""


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A Hugging Face style Jinja chat template with the special tokens it refers to."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    _compiled: jinja2.Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        environment = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        environment.globals["raise_exception"] = _raise_template_error
        try:
            compiled = environment.from_string(self.source)
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"chat template does not compile: {error}") from error
        object.__setattr__(self, "_compiled", compiled)

    def render(self, turns: Sequence[dict[str, str]]) -> str:
        """The prompt for `turns` ({role, content}), ending with the assistant's opening."""
        try:
            return self._compiled.render(
                messages=list(turns),
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except jinja2.TemplateError as error:
            raise TemplateError(f"chat template failed: {error}") from error


def render_prompt(
    template: ChatTemplate, messages: Sequence[ChatMessage], tools: Sequence[Tool]
) -> str:
    """The prompt text for a chat request; `tools` are the tools to describe (none when the
    request's tool_choice is "none")."""
    return template.render(template_turns(messages, tools))


def template_turns(messages: Sequence[ChatMessage], tools: Sequence[Tool]) -> list[dict[str, str]]:
    """The {role, content} turns the template sees, per the invariants in the module doc."""
    system_parts = [m.content for m in messages if m.role == "system" and m.content]
    if tools:
        system_parts.append(describe_tools(tools))
    turns: list[dict[str, str]] = []
    if system_parts:
        turns.append({"role": "system", "content": "\n\n".join(system_parts)})
    for message in messages:
        if message.role != "system":
            _append_turn(turns, *_turn_of(message))
    return turns


def describe_tools(tools: Sequence[Tool]) -> str:
    lines = []
    for tool in tools:
        described: dict[str, object] = {"name": tool.function.name}
        if tool.description:
            described["description"] = tool.description
        described["parameters"] = tool.function.parameters
        lines.append(orjson.dumps(described).decode())
    return TOOL_INSTRUCTIONS.format(functions="\n".join(lines))


def _turn_of(message: ChatMessage) -> tuple[str, str]:
    if message.role == "tool":
        return "user", render_tool_response(message.content or "")
    if message.role == "assistant":
        parts = [message.content] if message.content else []
        parts += [render_tool_call(call.name, call.arguments) for call in message.tool_calls]
        return "assistant", "\n".join(parts)
    return message.role, message.content or ""


def _append_turn(turns: list[dict[str, str]], role: str, content: str) -> None:
    if turns and turns[-1]["role"] == role and role != "system":
        turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n{content}"}
    else:
        turns.append({"role": role, "content": content})


def _raise_template_error(message: str) -> None:
    raise jinja2.TemplateError(message)
