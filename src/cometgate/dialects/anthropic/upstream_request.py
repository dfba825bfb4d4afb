"""Canonical request → Anthropic Messages body (POST /v1/messages).

What is refused, dropped (and reported as "canonical.path: reason"), or changed:

- `candidate_count` > 1 and log probabilities: Anthropic has neither → InvalidRequest.
- `seed`, `presence_penalty`, `frequency_penalty`: only tune the output → dropped.
- `temperature` above 1: Anthropic's range is 0 to 1, Gemini's 0 to 2; scaling or clamping would
  change what the caller asked for → InvalidRequest naming the field.
- JSON/enum output together with tools: the output is produced by a forced tool call (see
  `upstream_structured`), which leaves no room for the caller's own tools → InvalidRequest.
- Thinking is refused by Anthropic alongside a forced tool call (function calling mode ANY, or
  JSON output) and alongside temperature/top_k changes or a top_p below 0.95. The forced call
  is what the caller's contract depends on, so thinking is dropped there; with thinking on,
  the sampling settings Anthropic refuses are dropped instead.

Thinking budget (Anthropic: `{"type": "enabled", "budget_tokens": N}`, N ≥ 1024, N < max_tokens):

    caller asks for            budget_tokens
    thinkingBudget 0           thinking off (nothing sent)
    thinkingBudget -1          8192 (dynamic: a middle budget)
    thinkingBudget 1…1023      1024 (Anthropic's minimum; reported)
    thinkingBudget N ≥ 1024    N
    thinkingLevel MINIMAL      1024
    thinkingLevel LOW          2048
    thinkingLevel MEDIUM       8192
    thinkingLevel HIGH         24576
    thinkingLevel XHIGH        32768
    includeThoughts only       8192 (the caller wants to see thinking, so there must be some)

`max_tokens` is required by Anthropic: the caller's maxOutputTokens, else the configured
default. Both Gemini and Anthropic count thinking inside that limit; when it is not above the
budget, it is raised to budget + the visible limit (reported when the caller had set it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cometgate.canonical import (
    GenerateRequest,
    GenerationParams,
    ThinkingConfig,
    ToolChoice,
    ToolMode,
)
from cometgate.dialects.anthropic.code_execution import BETA, code_tool
from cometgate.dialects.anthropic.upstream_history import encode_history
from cometgate.dialects.anthropic.upstream_structured import respond_tool
from cometgate.dialects.anthropic.web_search import search_tool
from cometgate.dialects.upstream_codec import Encoded
from cometgate.errors import InvalidRequest

MIN_BUDGET = 1024
DYNAMIC_BUDGET = 8192
BUDGET_BY_LEVEL = {"MINIMAL": 1024, "LOW": 2048, "MEDIUM": 8192, "HIGH": 24576, "XHIGH": 32768}
MAX_TEMPERATURE = 1.0
MIN_TOP_P_WHILE_THINKING = 0.95


@dataclass(frozen=True, slots=True)
class AnthropicOptions:
    """What one Anthropic upstream is sent besides the request itself."""

    version: str = "2023-06-01"  # the anthropic-version header
    default_max_tokens: int = 4096  # Anthropic requires max_tokens; used when the caller sets none
    beta: tuple[str, ...] = ()  # anthropic-beta feature names


@dataclass(frozen=True, slots=True)
class _Tooling:
    fields: dict[str, Any]
    forced: bool  # a tool call is forced: Anthropic then refuses thinking


def encode_request(
    request: GenerateRequest,
    upstream_model: str,
    *,
    stream: bool,
    options: AnthropicOptions | None = None,
) -> Encoded:
    """Raises InvalidRequest for content or settings Anthropic cannot take at all."""
    opts = options or AnthropicOptions()
    _refuse_unsupported(request.params)
    dropped: list[str] = []
    # Caller fields from an Anthropic-dialect request with no canonical meaning ride along;
    # anything the canonical request says wins over them.
    body: dict[str, Any] = dict(request.extensions.get("anthropic", {}))
    body["model"] = upstream_model
    history = encode_history(request)
    dropped.extend(history.dropped)
    if history.system:
        body["system"] = history.system
    body["messages"] = history.messages
    tooling = _tooling(request)
    body.update(tooling.fields)
    search = search_tool(request)
    if search is not None:
        body["tools"] = [*body.get("tools", ()), search]
    code = code_tool(request)
    if code is not None:
        body["tools"] = [*body.get("tools", ()), code]
    budget = _thinking_budget(request.thinking, tooling.forced, dropped)
    body.update(_sampling(request.params, budget is not None, dropped))
    body["max_tokens"] = _max_tokens(request.params, opts, budget, dropped)
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return Encoded(body, tuple(dropped), (BETA,) if code is not None else ())


def _refuse_unsupported(params: GenerationParams) -> None:
    if params.candidate_count != 1:
        raise InvalidRequest(
            "this model generates exactly one candidate",
            violations={"params.candidate_count": "must be 1"},
        )
    if params.response_logprobs or params.logprobs is not None:
        field = "params.logprobs" if params.logprobs is not None else "params.response_logprobs"
        raise InvalidRequest(
            "log probabilities are not available for this model",
            violations={field: "not supported"},
        )


def _tooling(request: GenerateRequest) -> _Tooling:
    if request.output is not None:
        if request.tools:
            # The output is the input of one forced tool call; the model could not also
            # choose among the caller's tools, so the combination cannot keep its meaning.
            raise InvalidRequest(
                "a JSON or enum response cannot be combined with function declarations "
                "for this model",
                violations={"output": "not supported together with tools"},
            )
        tool = respond_tool(request.output)
        return _Tooling({"tools": [tool], "tool_choice": {"type": "tool", "name": tool["name"]}},
                        forced=True)
    if not request.tools:
        return _Tooling({}, forced=False)
    choice = request.tool_choice
    declared = {tool.name for tool in request.tools}
    allowed = set(choice.allowed_names)
    unknown = sorted(allowed - declared)
    if unknown:
        raise InvalidRequest(
            f"allowed function names {unknown} are not declared as tools",
            violations={"tool_choice.allowed_names": "must name declared functions"},
        )
    # Anthropic can force one named tool but not "one of these": sending only the allowed
    # tools keeps the meaning.
    tools = [t for t in request.tools
             if not allowed or choice.mode is ToolMode.NONE or t.name in allowed]
    encoded = [_tool(t.name, t.description, t.parameters) for t in tools]
    tool_choice = _tool_choice(choice, [t.name for t in tools])
    return _Tooling({"tools": encoded, "tool_choice": tool_choice},
                    forced=tool_choice["type"] in ("any", "tool"))


def _tool(name: str, description: str, parameters: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name}
    if description:
        tool["description"] = description
    # Anthropic requires an object schema even for a function without arguments.
    tool["input_schema"] = (
        dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
    )
    return tool


def _tool_choice(choice: ToolChoice, names: list[str]) -> dict[str, Any]:
    if choice.mode is ToolMode.NONE:
        return {"type": "none"}
    if choice.mode is ToolMode.ANY:
        if choice.allowed_names and len(names) == 1:
            return {"type": "tool", "name": names[0]}
        return {"type": "any"}
    # VALIDATED (calls constrained to the schemas) has no Anthropic switch: "auto" is nearest.
    return {"type": "auto"}


def _thinking_budget(
    thinking: ThinkingConfig | None, forced: bool, dropped: list[str]
) -> int | None:
    budget = _requested_budget(thinking)
    if budget is None:
        return None
    if forced:
        dropped.append("thinking: Anthropic cannot think while a function call or a JSON "
                       "response is forced")
        return None
    if budget < MIN_BUDGET:
        dropped.append(f"thinking.budget: raised from {budget} to Anthropic's minimum of "
                       f"{MIN_BUDGET}")
        return MIN_BUDGET
    return budget


def _requested_budget(thinking: ThinkingConfig | None) -> int | None:
    if thinking is None:
        return None
    if thinking.level is not None:
        budget = BUDGET_BY_LEVEL.get(thinking.level.upper())
        if budget is None:
            raise InvalidRequest(
                f"unknown thinking level {thinking.level!r}",
                violations={"thinking.level": "must be MINIMAL, LOW, MEDIUM, HIGH or XHIGH"},
            )
        return budget
    if thinking.budget is not None:
        if thinking.budget == 0:
            return None
        return DYNAMIC_BUDGET if thinking.budget < 0 else thinking.budget
    return DYNAMIC_BUDGET if thinking.include_thoughts else None


def _sampling(params: GenerationParams, thinking: bool, dropped: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if params.temperature is not None:
        if params.temperature > MAX_TEMPERATURE or params.temperature < 0:
            raise InvalidRequest(
                f"temperature {params.temperature} is outside this model's range [0, 1]",
                violations={"params.temperature": "must be between 0 and 1"},
            )
        if thinking:
            # Anthropic fixes the temperature at 1 while thinking: only another value is lost.
            if params.temperature != MAX_TEMPERATURE:
                dropped.append("params.temperature: Anthropic fixes it at 1 while thinking")
        else:
            body["temperature"] = params.temperature
    if params.top_p is not None:
        if thinking and params.top_p < MIN_TOP_P_WHILE_THINKING:
            dropped.append("params.top_p: Anthropic takes only 0.95 to 1 while thinking")
        else:
            body["top_p"] = params.top_p
    if params.top_k is not None:
        if thinking:
            dropped.append("params.top_k: Anthropic refuses top_k while thinking")
        else:
            body["top_k"] = params.top_k
    if params.stop_sequences:
        body["stop_sequences"] = list(params.stop_sequences)
    for name in ("seed", "presence_penalty", "frequency_penalty"):
        if getattr(params, name) is not None:
            dropped.append(f"params.{name}: Anthropic has no {name}")
    return body


def _max_tokens(
    params: GenerationParams, opts: AnthropicOptions, budget: int | None, dropped: list[str]
) -> int:
    requested = params.max_output_tokens
    max_tokens = requested if requested is not None else opts.default_max_tokens
    if budget is None or max_tokens > budget:
        return max_tokens
    raised = budget + max_tokens
    if requested is not None:
        dropped.append(f"params.max_output_tokens: raised from {requested} to {raised}, above "
                       "the thinking budget, as Anthropic requires")
    return raised
