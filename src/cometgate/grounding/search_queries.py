"""The model writes its own search queries, where it can call tools: before the answer, it is
asked once, with only a `web_search` function offered and a call required, what to search for.
The caller's question is the fallback whenever that yields nothing usable (no call, no query,
an upstream refusal), so a search still runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from cometgate.canonical import (
    FunctionTool,
    GenerateRequest,
    GenerateResponse,
    ToolCallPart,
    ToolChoice,
    ToolMode,
    Usage,
)
from cometgate.grounding.emulated_search import MAX_QUERY_CHARS

SEARCH_FUNCTION = "web_search"
# A query is a line of words; a plan needs few tokens (a reasoning model may take more).
_PLAN_TOKENS = 256

Generate = Callable[[GenerateRequest], Awaitable[GenerateResponse]]


def planning_request(request: GenerateRequest, max_queries: int) -> GenerateRequest:
    """The caller's conversation with one function offered, its call required."""
    function = FunctionTool(
        SEARCH_FUNCTION,
        f"Search the web. Give 1 to {max_queries} short search queries whose results would "
        "let you answer the conversation's last question with current, cited facts.",
        {"type": "object", "required": ["queries"], "properties": {"queries": {
            "type": "array", "items": {"type": "string"}, "minItems": 1,
            "maxItems": max_queries}}})
    limit = request.params.max_output_tokens
    params = replace(request.params, candidate_count=1, logprobs=None,
                     response_logprobs=False,
                     max_output_tokens=_PLAN_TOKENS if limit is None else max(limit,
                                                                               _PLAN_TOKENS))
    return replace(request, tools=(function,), web_search=None, output=None, params=params,
                   tool_choice=ToolChoice(ToolMode.ANY, (SEARCH_FUNCTION,)))


def planned_queries(response: GenerateResponse, max_queries: int) -> tuple[str, ...]:
    """The queries of the response's web_search calls: one line each, distinct, bounded."""
    found: dict[str, None] = {}
    for candidate in response.candidates[:1]:
        for part in candidate.parts:
            if not isinstance(part, ToolCallPart) or part.name != SEARCH_FUNCTION:
                continue
            queries = part.arguments.get("queries")
            for query in queries if isinstance(queries, list) else []:
                line = " ".join(query.split())[:MAX_QUERY_CHARS] if isinstance(query, str) \
                    else ""
                if line:
                    found.setdefault(line)
    return tuple(found)[:max_queries]


def added(first: Usage, second: Usage) -> Usage:
    """Two generations' usage as one (the plan's tokens are billed with the answer's)."""
    return replace(
        second,
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        output_tokens=first.output_tokens + second.output_tokens,
        thoughts_tokens=first.thoughts_tokens + second.thoughts_tokens,
        cached_tokens=first.cached_tokens + second.cached_tokens,
        searches=first.searches + second.searches,
    )
