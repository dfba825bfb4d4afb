"""Responses request bodies → canonical requests: input items, tools, settings, and what is
dropped or refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    Message,
    OutputFormat,
    ReasoningPart,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    ToolResultPart,
)
from cometgate.dialects.responses.caller_request import (
    decode_responses_request,
    estimate_responses,
    read_responses_document,
    wants_store,
)
from cometgate.dialects.responses.paths import responses_path
from cometgate.errors import InvalidRequest

BASE: dict[str, Any] = {"model": "m", "input": "Hi"}
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def decoded(**fields: Any) -> Any:
    return decode_responses_request({**BASE, **fields})


def test_a_string_input_is_one_user_message_and_instructions_the_system() -> None:
    request = decoded(instructions="Be brief.")
    assert request.system == (TextPart("Be brief."),)
    assert request.messages == (Message("user", (TextPart("Hi"),)),)


def test_items_make_turns_in_order() -> None:
    request = decoded(input=[
        {"role": "system", "content": "S"},
        {"role": "user", "content": [
            {"type": "input_text", "text": "Look"},
            {"type": "input_image", "image_url": "https://x.test/cat.png"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERg==",
             "filename": "a.pdf"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "T"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Calling", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": '{"ok": true}'},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "plain"}]},
    ])
    assert request.system == (TextPart("S"),)
    user, assistant, results = request.messages
    assert user.parts == (TextPart("Look"), FileRefPart("https://x.test/cat.png", "image/png"),
                          BlobPart("application/pdf", b"%PDF"))
    assert assistant == Message("assistant", (
        ReasoningPart("T"), TextPart("Calling"), ToolCallPart("f", {"a": 1}, "c1"),
        ToolCallPart("f", {}, "c2")))
    assert results == Message("user", (ToolResultPart("f", {"ok": True}, "c1"),
                                       ToolResultPart("f", {"content": "plain"}, "c2")))


def test_encrypted_reasoning_and_image_detail_are_dropped_with_a_report() -> None:
    request = decoded(input=[
        {"role": "user", "content": [{"type": "input_image", "detail": "high",
                                      "image_url": "data:image/png;base64,iVBORw=="}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "opaque"},
        {"role": "assistant", "content": "ok"}])
    assert [(u.path, u.droppable) for u in request.untranslated] == [
        ("input[0].content[0].detail", True), ("input[1].encrypted_content", True)]
    assert request.messages[1] == Message("assistant", (TextPart("ok"),))


def test_tools_choice_and_strictness() -> None:
    strict = decoded(tools=[{**TOOL, "strict": True}])
    assert strict.tool_choice == ToolChoice(ToolMode.VALIDATED)
    assert strict.tools[0].parameters == {"type": "object"}
    named = decoded(tools=[TOOL, {**TOOL, "name": "g", "strict": True}],
                    tool_choice={"type": "function", "name": "g"})
    assert named.tool_choice == ToolChoice(ToolMode.ANY, ("g",))
    assert [u.path for u in named.untranslated] == ["tools[1].strict"]
    allowed = decoded(tools=[TOOL], tool_choice={"type": "allowed_tools", "mode": "required",
                                                 "tools": [{"type": "function", "name": "f"}]})
    assert allowed.tool_choice == ToolChoice(ToolMode.ANY, ("f",))
    assert decoded(tools=[TOOL], tool_choice="none").tool_choice == ToolChoice(ToolMode.NONE)


def test_settings_become_params_output_and_thinking() -> None:
    request = decoded(temperature=0.3, top_p=0.9, max_output_tokens=64, top_logprobs=3,
                      include=["message.output_text.logprobs"],
                      text={"format": {"type": "json_schema", "name": "X",
                                       "schema": {"type": "object"}, "strict": True}},
                      reasoning={"effort": "low", "summary": "detailed"})
    params = request.params
    assert (params.temperature, params.top_p, params.max_output_tokens) == (0.3, 0.9, 64)
    assert (params.response_logprobs, params.logprobs) == (True, 3)
    assert request.output == OutputFormat("json", {"type": "object"})
    assert request.thinking == ThinkingConfig(include_thoughts=True, level="LOW")
    assert decoded(reasoning={"effort": "none"}).thinking == ThinkingConfig(budget=0)
    assert decoded(text={"format": {"type": "json_object"}}).output == OutputFormat("json")
    assert decoded(text={"format": {"type": "text"}}).output is None


def test_fields_that_only_tune_are_droppable_and_others_are_not() -> None:
    request = decoded(service_tier="priority", truncation="auto", parallel_tool_calls=False,
                      max_tool_calls=3, store=False, user="u", metadata={"k": "v"},
                      prompt_cache_key="p", safety_identifier="s",
                      modalities=["audio"])
    assert {(u.path, u.droppable) for u in request.untranslated} == {
        ("service_tier", True), ("truncation", True), ("parallel_tool_calls", True),
        ("max_tool_calls", True), ("modalities", False)}
    defaults = decoded(service_tier="auto", truncation="disabled", parallel_tool_calls=True)
    assert defaults.untranslated == ()


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": 3}, "input"),
    ({"input": []}, "input"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image",
                                              "image_url": "ftp://x"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"role": "user", "content": [{"type": "input_image",
                                              "image_url": "data:text/plain;base64,aGk="}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]},
     "input[0].arguments"),
    ({"tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "name": "g"}}, "tool_choice.name"),
    ({"text": {"format": {"type": "json_schema", "name": "X"}}}, "text.format.schema"),
    ({"reasoning": {"summary": "long"}}, "reasoning.summary"),
    ({"top_logprobs": 21}, "top_logprobs"),
    ({"truncation": "middle"}, "truncation"),
    ({"include": "reasoning.encrypted_content"}, "include"),
])
def test_refusals_name_the_parameter(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decoded(**fields)
    assert next(iter(raised.value.violations)) == param


@pytest.mark.parametrize(("fields", "param"), [
    ({"previous_response_id": ["resp_1"]}, "previous_response_id"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"background": True, "store": False}, "background"),
    ({"background": True, "stream": True}, "stream"),
    ({"background": 1}, "background"),
    ({"store": "yes"}, "store"),
    ({"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({"input": None}, "input"),
])
def test_read_refuses_what_needs_state_or_is_malformed(fields: dict[str, Any],
                                                       param: str) -> None:
    body = {k: v for k, v in {**BASE, **fields}.items() if v is not None}
    with pytest.raises(InvalidRequest) as raised:
        read_responses_document(orjson.dumps(body))
    assert next(iter(raised.value.violations)) == param


def test_store_defaults_on_and_the_estimate_counts_media() -> None:
    assert wants_store(BASE) and not wants_store({**BASE, "store": False})
    image = {"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}
    plain, _ = estimate_responses(BASE)
    with_image, limit = estimate_responses({**BASE, "input": [image],
                                            "max_output_tokens": 100})
    assert with_image > plain + 200 and limit == 100


@pytest.mark.parametrize(("canonical", "caller"), [
    ("params.top_k", "top_k"), ("params.logprobs", "top_logprobs"),
    ("thinking.level", "reasoning"), ("output", "text.format"),
    ("messages[0].parts[1].signature", "messages[0].parts[1].signature"),
])
def test_dropped_paths_in_the_callers_words(canonical: str, caller: str) -> None:
    assert responses_path(canonical) == caller
