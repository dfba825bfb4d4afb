"""Canonical request → OpenAI Chat Completions body, for upstreams that speak that dialect
(OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio, the local worker).

The decoding half lives in `upstream_response` (whole responses), `upstream_errors` (errors)
and `upstream_stream` (SSE chunks); it is re-exported here so that the upstream codec is one
import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from cometgate.canonical import (
    GenerateRequest,
    GenerationParams,
    OutputFormat,
    ThinkingConfig,
    ToolMode,
)
from cometgate.canonical.thinking_levels import THINKING_LEVELS
from cometgate.dialects.openai.reasoning_effort import EFFORT_BY_LEVEL
from cometgate.dialects.openai.upstream_errors import classify_error
from cometgate.dialects.openai.upstream_history import encode_history
from cometgate.dialects.openai.upstream_response import decode_response
from cometgate.dialects.openai.upstream_stream import decode_stream
from cometgate.dialects.openai.web_search import search_options
from cometgate.dialects.upstream_codec import Encoded
from cometgate.errors import InvalidRequest

__all__ = [
    "Encoded",
    "OpenAIOptions",
    "classify_error",
    "decode_response",
    "decode_stream",
    "encode_request",
    "encode_tokenize_request",
]


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """What one OpenAI-compatible upstream accepts beyond the common core."""

    accepts_top_k: bool = False  # vLLM, llama.cpp and Ollama take `top_k`; OpenAI rejects it
    supports_reasoning: bool = False  # the upstream honours `reasoning_effort`
    tokenize_endpoint: bool = False  # vLLM-style POST /tokenize at the server root
    responses_api: bool = False  # also serves POST /responses (Responses callers forwarded)
    # OpenAI's reasoning models refuse `max_tokens` and want `max_completion_tokens`.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # OpenAI's strict mode demands additionalProperties=false and every property required;
    # a caller's Gemini schema often has neither, so strictness is a per-upstream choice.
    strict_schemas: bool = True
    web_search: bool = False  # the models search the web when asked (`web_search_options`)


def encode_request(
    request: GenerateRequest,
    upstream_model: str,
    *,
    stream: bool,
    options: OpenAIOptions | None = None,
) -> Encoded:
    """Raises InvalidRequest for content or settings the upstream cannot take at all; the
    pipeline checks model capabilities first, so this is the backstop."""
    opts = options or OpenAIOptions()
    dropped: list[str] = []
    # Caller fields from an OpenAI-dialect request with no canonical meaning ride along;
    # anything the canonical request says wins over them.
    body: dict[str, Any] = dict(request.extensions.get("openai", {}))
    body["model"] = upstream_model
    history = encode_history(request)
    body["messages"] = history.messages
    dropped.extend(history.dropped)
    body.update(_tools(request))
    body.update(search_options(request))  # sent only to upstreams that search (pipeline)
    body.update(_params(request.params, opts, dropped))
    if request.output is not None:
        body["response_format"] = _response_format(request.output, opts)
    if request.thinking is not None:
        body.update(_reasoning(request.thinking, opts, dropped))
    if request.prompt_cache is not None:
        # The cached prefix leads the messages; the key routes requests sharing it to the
        # same prompt cache (OpenAI's prompt caching; other servers ignore the field).
        body["prompt_cache_key"] = request.prompt_cache.key
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return Encoded(body, tuple(dropped))


def encode_tokenize_request(request: GenerateRequest, upstream_model: str) -> dict[str, Any]:
    """vLLM's /tokenize body for a chat prompt: counts what a generation would be given."""
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": encode_history(request).messages,
    }
    tools = _tools(request).get("tools")
    if tools:
        body["tools"] = tools
    return body


def _tools(request: GenerateRequest) -> dict[str, Any]:
    if not request.tools:
        return {}  # OpenAI rejects tool_choice without tools
    choice = request.tool_choice
    declared = {tool.name for tool in request.tools}
    allowed = set(choice.allowed_names)
    unknown = sorted(allowed - declared)
    if unknown:
        raise InvalidRequest(
            f"allowed function names {unknown} are not declared as tools",
            violations={"tool_choice.allowed_names": "must name declared functions"},
        )
    # Sending only the allowed tools keeps the meaning when OpenAI has no "one of these".
    tools = [t for t in request.tools if not allowed or choice.mode is ToolMode.NONE
             or t.name in allowed]
    encoded: dict[str, Any] = {"tools": [_function(t.name, t.description, t.parameters)
                                         for t in tools]}
    encoded["tool_choice"] = _tool_choice(choice.mode, [t.name for t in tools], bool(allowed))
    return encoded


def _function(name: str, description: str, parameters: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    # OpenAI requires a schema object even for a function without arguments.
    function["parameters"] = (
        dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
    )
    return {"type": "function", "function": function}


def _tool_choice(mode: ToolMode, names: list[str], restricted: bool) -> Any:
    if mode is ToolMode.NONE:
        return "none"
    if mode is ToolMode.ANY:
        if restricted and len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        return "required"
    # VALIDATED (calls constrained to the schemas) has no OpenAI switch: "auto" is nearest.
    return "auto"


def _params(params: GenerationParams, opts: OpenAIOptions, dropped: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    optional: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        opts.max_tokens_field: params.max_output_tokens,
        "seed": params.seed,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if params.top_k is not None:
        if opts.accepts_top_k:
            body["top_k"] = params.top_k
        else:
            dropped.append("params.top_k: this upstream does not accept top_k")
    if params.stop_sequences:
        body["stop"] = list(params.stop_sequences)
    if params.candidate_count != 1:
        body["n"] = params.candidate_count
    if params.response_logprobs or params.logprobs is not None:
        body["logprobs"] = True
    if params.logprobs is not None:
        body["top_logprobs"] = params.logprobs
    return body


def _response_format(output: OutputFormat, opts: OpenAIOptions) -> dict[str, Any]:
    if output.schema is None:
        if output.kind == "enum":
            raise InvalidRequest(
                "an enum response needs a schema listing the allowed values",
                violations={"output.schema": "required for enum output"},
            )
        return {"type": "json_object"}
    # For enum output the string-enum schema sits at the root: the upstream answers with a
    # JSON string, which the decoders turn back into the bare value Gemini callers expect.
    schema = orjson.loads(orjson.dumps(output.schema))
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": opts.strict_schemas},
    }


def _effort_for_budget(budget: int) -> str | None:
    """thinkingBudget (tokens) → reasoning_effort, by the budgets of the table of thinking
    levels (`canonical.thinking_levels`: low = 1,024, medium = 8,192, high = 24,576 tokens):

        budget          effort
        -1 (dynamic)    none sent: the upstream's default
        0 (off)         minimal (OpenAI reasoning cannot be switched off entirely)
        1 … 1024        low
        1025 … 8192     medium
        > 8192          high
    """
    if budget < 0:
        return None
    if budget == 0:
        return "minimal"
    return next((effort for step, effort in _BUDGET_STEPS if budget <= step), "high")


# (the most tokens a level's effort stands for, that effort), lowest first.
_BUDGET_STEPS = tuple((level.budget, level.reasoning_effort) for level in THINKING_LEVELS
                      if isinstance(level.budget, int))


def _reasoning(
    thinking: ThinkingConfig, opts: OpenAIOptions, dropped: list[str]
) -> dict[str, Any]:
    asks_for_thinking = thinking.level is not None or (thinking.budget or 0) > 0
    if not opts.supports_reasoning:
        if asks_for_thinking:
            raise InvalidRequest(
                "thinking is not supported by this model",
                violations={"thinking": "the upstream has no reasoning control"},
            )
        return {}  # "off" or "dynamic" on a model that never thinks: nothing to send
    if thinking.level is not None:
        level = thinking.level.upper()
        effort = EFFORT_BY_LEVEL.get(level)
        if effort is None:
            raise InvalidRequest(
                f"unknown thinking level {thinking.level!r}",
                violations={"thinking.level": "must be MINIMAL, LOW, MEDIUM, HIGH or XHIGH"},
            )
        if level == "XHIGH":
            dropped.append("thinking.level: XHIGH was sent as reasoning_effort=high")
        return {"reasoning_effort": effort}
    if thinking.budget is None:
        return {}
    effort_for_budget = _effort_for_budget(thinking.budget)
    return {} if effort_for_budget is None else {"reasoning_effort": effort_for_budget}
