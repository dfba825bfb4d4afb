"""The model's query planning: the request that asks for queries, and the queries read from
its answer (one line each, distinct, at most as many as configured)."""

from __future__ import annotations

from cometgate.canonical import (
    Candidate,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    GenerateResponse,
    GenerationParams,
    Message,
    OutputFormat,
    Part,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    Usage,
    WebSearchTool,
)
from cometgate.grounding.search_queries import added, planned_queries, planning_request

ASKED = GenerateRequest(
    "m", (Message("user", (TextPart("q?"),)),), tools=(FunctionTool("mine"),),
    params=GenerationParams(candidate_count=3, max_output_tokens=40, logprobs=2),
    output=OutputFormat("json"), web_search=WebSearchTool(path="tools[0].googleSearch"))


def answer(*parts: Part) -> GenerateResponse:
    return GenerateResponse("m", (Candidate(parts, FinishReason.STOP),), Usage(), "r", 0.0)


def test_the_plan_offers_only_the_search_function_and_requires_its_call() -> None:
    plan = planning_request(ASKED, 3)
    (function,) = plan.tools
    assert function.name == "web_search" and "1 to 3" in function.description
    assert function.parameters == {"type": "object", "required": ["queries"], "properties": {
        "queries": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                    "maxItems": 3}}}
    assert plan.tool_choice == ToolChoice(ToolMode.ANY, ("web_search",))
    assert plan.web_search is None and plan.output is None
    assert plan.params.candidate_count == 1 and plan.params.logprobs is None
    assert plan.params.max_output_tokens == 256
    assert plan.messages == ASKED.messages


def test_queries_are_lines_distinct_and_bounded() -> None:
    response = answer(
        TextPart("thinking aloud"),
        ToolCallPart("web_search", {"queries": [" a\n b ", "a b", "", 7, "c", "d"]}),
        ToolCallPart("other", {"queries": ["x"]}),
        ToolCallPart("web_search", {"queries": "not a list"}))
    assert planned_queries(response, 2) == ("a b", "c")
    assert planned_queries(answer(TextPart("no call")), 3) == ()


def test_the_plan_tokens_are_billed_with_the_answer() -> None:
    total = added(Usage(7, 2, 1, 3, searches=0), Usage(10, 5, 0, 0, searches=1,
                                                       service_tier="flex"))
    assert total == Usage(17, 7, 1, 3, searches=1, service_tier="flex")
