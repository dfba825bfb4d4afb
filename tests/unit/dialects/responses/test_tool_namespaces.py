"""Namespace tools flattened for upstreams with only flat function tools, and the model's calls
of them given back their namespace: in the request, in a whole answer and in a stream."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    FinishReason,
    FunctionTool,
    GenerateResponse,
    Message,
    PartDelta,
    StreamStarted,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from cometgate.dialects.responses.caller_request import decode_responses_request
from cometgate.dialects.responses.caller_response import encode_response, new_frame
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder
from cometgate.dialects.responses.tool_namespaces import flat_name, namespaced_names
from cometgate.errors import InvalidRequest

OBJECT = {"type": "object", "properties": {"target": {"type": "string"}}}
AGENTS: dict[str, Any] = {
    "type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
    "tools": [{"type": "function", "name": "spawn_agent", "description": "Start one.",
               "strict": False, "parameters": OBJECT},
              {"type": "function", "name": "close_agent", "parameters": OBJECT}]}
PLAIN = {"type": "function", "name": "exec__command", "description": "Run.",
         "parameters": {"type": "object"}}
DOCUMENT: dict[str, Any] = {"model": "alias", "input": "Hi", "tools": [PLAIN, AGENTS]}
EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)


def test_the_functions_of_a_namespace_are_declared_flat_in_place() -> None:
    request = decode_responses_request(DOCUMENT)
    assert request.tools == (
        FunctionTool("exec__command", "Run.", {"type": "object"}),
        FunctionTool("multi_agent_v1__spawn_agent", "Sub-agents.\n\nStart one.", OBJECT),
        FunctionTool("multi_agent_v1__close_agent", "Sub-agents.", OBJECT))


def test_strictness_of_a_namespaced_function_is_reported_where_it_was_given() -> None:
    strict = {**AGENTS, "tools": [{**AGENTS["tools"][0], "strict": True}, AGENTS["tools"][1]]}
    request = decode_responses_request({**DOCUMENT, "tools": [PLAIN, strict]})
    assert [u.path for u in request.untranslated] == ["tools[1].tools[0].strict"]


def test_a_namespaced_call_in_the_input_takes_its_flat_name() -> None:
    request = decode_responses_request({**DOCUMENT, "input": [
        {"role": "user", "content": "Close it"},
        {"type": "function_call", "call_id": "c1", "namespace": "multi_agent_v1",
         "name": "close_agent", "arguments": '{"target": "a1"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "closed"}]})
    call, result = request.messages[1:]
    assert call == Message("assistant", (ToolCallPart("multi_agent_v1__close_agent",
                                                  {"target": "a1"}, "c1"),))
    (part,) = result.parts
    assert isinstance(part, ToolResultPart) and part.name == "multi_agent_v1__close_agent"


def test_flat_names_map_back_only_through_the_declarations() -> None:
    assert flat_name("crm", "lookup") == "crm__lookup"
    assert namespaced_names([PLAIN, AGENTS]) == {
        "multi_agent_v1__spawn_agent": ("multi_agent_v1", "spawn_agent"),
        "multi_agent_v1__close_agent": ("multi_agent_v1", "close_agent")}
    assert namespaced_names(None) == {}
    assert namespaced_names([{**AGENTS, "tools": [{"type": "custom", "name": "x"}]}]) == {}


def answer(*calls: ToolCallPart) -> GenerateResponse:
    usage = Usage(prompt_tokens=5, output_tokens=2)
    return GenerateResponse("up", (Candidate(calls, FinishReason.STOP),), usage, "id", 1.0)


def test_a_whole_answer_gives_calls_back_their_namespace() -> None:
    body = encode_response(answer(ToolCallPart("multi_agent_v1__spawn_agent", {}, "c1"),
                                  ToolCallPart("exec__command", {}, "c2")),
                           new_frame(DOCUMENT))
    parsed = Response.model_validate(body)
    namespaced, plain = parsed.output
    assert (namespaced.type, plain.type) == ("function_call", "function_call")
    assert (namespaced.namespace, namespaced.name) == ("multi_agent_v1", "spawn_agent")
    assert (plain.namespace, plain.name) == (None, "exec__command")
    assert "namespace" not in body["output"][1]
    assert body["tools"][1] == {
        "type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
        "tools": [{"type": "function", "name": "spawn_agent", "description": "Start one.",
                   "parameters": OBJECT, "strict": False},
                  {"type": "function", "name": "close_agent", "description": None,
                   "parameters": OBJECT, "strict": None}]}


def test_a_stream_gives_calls_back_their_namespace() -> None:
    encoder = ResponseStreamEncoder(new_frame(DOCUMENT))
    frames = [*encoder.feed(StreamStarted("up", "id", 1.0)),
              *encoder.feed(PartDelta(ToolCallPart("multi_agent_v1__close_agent",
                                                   {"target": "a1"}, "c1"))),
              *encoder.feed(CandidateFinished(FinishReason.STOP)), *encoder.end()]
    events = [EVENTS.validate_json(frame.split(b"data: ", 1)[1]) for frame in frames]
    items = [(event.type, event.item) for event in events
             if event.type in ("response.output_item.added", "response.output_item.done")]
    assert [(kind, item.type, getattr(item, "namespace", None), getattr(item, "name", None))
            for kind, item in items] == [
        ("response.output_item.added", "function_call", "multi_agent_v1", "close_agent"),
        ("response.output_item.done", "function_call", "multi_agent_v1", "close_agent")]
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.name == "close_agent"
    assert encoder.final is not None
    assert encoder.final["output"][0]["namespace"] == "multi_agent_v1"


def namespace(**changes: Any) -> dict[str, Any]:
    return {**AGENTS, **changes}


@pytest.mark.parametrize(("tools", "param", "message"), [
    ([namespace(name="multi agent")], "tools[0].name",
     "Invalid value for 'tools[0].name': expected a string of letters, digits, '_' or '-'."),
    ([namespace(tools=[])], "tools[0].tools",
     "Invalid value for 'tools[0].tools': expected a non-empty array of function tools."),
    ([namespace(tools=[{"type": "web_search"}])], "tools[0].tools[0].type",
     "The built-in tool 'web_search' is not supported by this gateway"),
    ([namespace(name="n" * 50, tools=[{"type": "function", "name": "f" * 13}])],
     "tools[0].tools[0].name",
     f"Invalid value for 'tools[0].tools[0].name': '{'n' * 50}__{'f' * 13}', the name with its "
     "namespace that the models here are given, is longer than 64 characters."),
    ([{**PLAIN, "name": "multi_agent_v1__close_agent"}, AGENTS], "tools[1].tools[1].name",
     "Invalid value for 'tools[1].tools[1].name': 'multi_agent_v1__close_agent', the name with "
     "its namespace that the models here are given, is also the name of another tool."),
])
def test_a_namespace_that_cannot_be_flattened_is_refused(tools: list[dict[str, Any]],
                                                         param: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decode_responses_request({**DOCUMENT, "tools": tools})
    assert list(raised.value.violations) == [param]
    assert str(raised.value).startswith(message), str(raised.value)
