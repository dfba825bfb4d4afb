"""Prompt rendering through a real chat template (ChatML, as in the bundled SmolLM2)."""

from __future__ import annotations

import pytest

from cometgate.worker.engine import CHATML_TEMPLATE
from cometgate.worker.prompt import (
    ChatTemplate,
    TemplateError,
    render_prompt,
    template_turns,
)
from cometgate.worker.request import parse_chat_request

# Rejects anything but strict user/assistant alternation after an optional system turn.
STRICT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% if not loop.first %}{{ raise_exception('system') }}"
    "{% endif %}[SYS]{{ m['content'] }}"
    "{% else %}{% set i = loop.index0 - (1 if messages[0]['role'] == 'system' else 0) %}"
    "{% if (m['role'] == 'user') != (i % 2 == 0) %}{{ raise_exception('alternate') }}{% endif %}"
    "[{{ m['role'] }}]{{ m['content'] }}{% endif %}{% endfor %}[assistant]"
)

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}

TOOL_CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
        {"id": "c2", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "cold"},
    {"role": "tool", "tool_call_id": "c2", "content": "warm"},
    {"role": "user", "content": "Thanks"},
]


def test_chatml_rendering_ends_with_assistant_opening() -> None:
    request = parse_chat_request({"model": "m", "messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})
    prompt = render_prompt(ChatTemplate(CHATML_TEMPLATE), request.messages, ())
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n" \
                     "<|im_start|>assistant\n"


def test_tools_are_described_in_the_single_system_turn() -> None:
    request = parse_chat_request({"model": "m", "messages": TOOL_CONVERSATION,
                                  "tools": [WEATHER_TOOL]})
    turns = template_turns(request.messages, request.tools)
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    system = turns[0]["content"]
    assert system.startswith("Be brief.")
    assert '"name":"get_weather"' in system and '"description":"Weather"' in system
    assert "<tool_call>" in system
    assert turns[2]["content"] == (
        '<tool_call>{"name":"get_weather","arguments":{"city":"Oslo"}}</tool_call>\n'
        '<tool_call>{"name":"get_weather","arguments":{"city":"Rome"}}</tool_call>')
    assert turns[3]["content"] == (
        "<tool_response>cold</tool_response>\n<tool_response>warm</tool_response>\nThanks")


def test_alternation_strict_template_accepts_tool_conversations() -> None:
    request = parse_chat_request({"model": "m", "messages": TOOL_CONVERSATION,
                                  "tools": [WEATHER_TOOL]})
    prompt = render_prompt(ChatTemplate(STRICT_TEMPLATE), request.messages, request.tools)
    assert prompt.startswith("[SYS]Be brief.")
    assert prompt.endswith("Thanks[assistant]")


def test_without_tools_nothing_is_described() -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert template_turns(request.messages, ()) == [{"role": "user", "content": "x"}]


def test_template_errors_are_reported() -> None:
    with pytest.raises(TemplateError):
        ChatTemplate("{% for %}")
    request = parse_chat_request({"model": "m", "messages": [
        {"role": "assistant", "content": "first"}]})
    with pytest.raises(TemplateError, match="alternate"):
        render_prompt(ChatTemplate(STRICT_TEMPLATE), request.messages, ())
