"""Validating an OpenAI Chat Completions request body into typed values.

Unknown fields are ignored, as OpenAI-compatible servers do; known fields with invalid values are
rejected with a RequestError naming the parameter, which the worker renders in OpenAI's envelope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from cometgate.worker.grammar import FunctionSpec

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_STOP_SEQUENCES = 4
MAX_N = 128
MAX_TOP_LOGPROBS = 20

ToolChoiceMode = Literal["none", "auto", "required", "function"]
FormatKind = Literal["text", "json_object", "json_schema"]


class RequestError(Exception):
    """A request the worker refuses; rendered as OpenAI's error envelope with `status`."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class ToolCallIn:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn; `developer` is folded into `system`. Content is text only (model is text-only)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None
    tool_calls: tuple[ToolCallIn, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    function: FunctionSpec
    description: str


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampler settings; top_k 0 and min_p 0 disable those filters."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    # llama.cpp server's default: trims the junk tail that a 135M model samples at temperature 1.
    min_p: float = 0.05
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: FormatKind = "text"
    schema: object = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    max_tokens: int | None
    stop: tuple[str, ...]
    n: int
    logprobs: bool
    top_logprobs: int
    response_format: ResponseFormat
    tools: tuple[Tool, ...]
    tool_choice: ToolChoiceMode
    tool_choice_name: str | None
    parallel_tool_calls: bool
    stream: bool
    include_usage: bool
    # OpenAI's prompt-cache hint: the answer then reports the prompt tokens served from the
    # KV cache (llama.cpp reuses the prefix a prompt shares with the one before it).
    prompt_cache_key: str | None = None

    def callable_functions(self) -> tuple[FunctionSpec, ...]:
        """The functions the model may call under tool_choice (none when it is "none")."""
        if self.tool_choice == "none":
            return ()
        if self.tool_choice == "function":
            return tuple(t.function for t in self.tools if t.function.name == self.tool_choice_name)
        return tuple(t.function for t in self.tools)


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(
            "We could not parse the JSON body of your request. The API expects a JSON payload."
        ) from None
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    return body


def parse_chat_request(body: Mapping[str, Any]) -> ChatRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    stream = _bool(body, "stream", False)
    tools = parse_tools(body.get("tools"))
    mode, name = _tool_choice(body.get("tool_choice"), tools)
    logprobs = _bool(body, "logprobs", False)
    top_logprobs = _int(body, "top_logprobs", 0, low=0, high=MAX_TOP_LOGPROBS)
    if "top_logprobs" in body and body["top_logprobs"] is not None and not logprobs:
        raise RequestError("logprobs must be set to true if top_logprobs is used.",
                           param="top_logprobs")
    return ChatRequest(
        model=model,
        messages=parse_messages(body.get("messages")),
        sampling=_sampling(body),
        max_tokens=_max_tokens(body),
        stop=_stop(body.get("stop")),
        n=_int(body, "n", 1, low=1, high=MAX_N),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=_response_format(body.get("response_format")),
        tools=tools,
        tool_choice=mode,
        tool_choice_name=name,
        parallel_tool_calls=_bool(body, "parallel_tool_calls", True),
        stream=stream,
        include_usage=_include_usage(body.get("stream_options"), stream),
        prompt_cache_key=_prompt_cache_key(body.get("prompt_cache_key")),
    )


def _prompt_cache_key(raw: object) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise RequestError("'prompt_cache_key' must be a string.", param="prompt_cache_key")


def parse_messages(raw: object) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise RequestError("'messages' must be a non-empty array.", param="messages")
    return tuple(_message(item, f"messages[{i}]") for i, item in enumerate(raw))


def parse_tools(raw: object) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RequestError("'tools' must be an array.", param="tools")
    tools = tuple(_tool(item, f"tools[{i}]") for i, item in enumerate(raw))
    names = [tool.function.name for tool in tools]
    if len(set(names)) != len(names):
        raise RequestError("Tool names must be unique.", param="tools")
    return tools


def _message(raw: object, param: str) -> ChatMessage:
    if not isinstance(raw, dict):
        raise RequestError(f"Invalid type for '{param}': expected an object.", param=param)
    role = raw.get("role")
    if role not in ROLES:
        raise RequestError(
            f"Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', "
            "'assistant', and 'tool'.",
            param=f"{param}.role",
        )
    content = _content(raw.get("content"), f"{param}.content")
    tool_calls = _tool_calls_in(raw.get("tool_calls"), f"{param}.tool_calls")
    if role == "assistant" and tool_calls:
        return ChatMessage("assistant", content, tool_calls=tool_calls)
    if content is None and role != "assistant":
        raise RequestError(f"Missing required parameter: '{param}.content'.",
                           param=f"{param}.content")
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str):
            raise RequestError(f"Missing required parameter: '{param}.tool_call_id'.",
                               param=f"{param}.tool_call_id")
        return ChatMessage("tool", content, tool_call_id=call_id)
    folded: Literal["system", "user", "assistant"] = "system" if role == "developer" else role
    return ChatMessage(folded, content)


def _content(raw: object, param: str) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise RequestError(f"Invalid type for '{param}': expected a string or an array.",
                           param=param)
    texts: list[str] = []
    for i, part in enumerate(raw):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("image_url", "input_image", "input_audio", "file"):
            raise RequestError(f"'{param}[{i}]': this model is text-only; {kind} parts are "
                               "not supported.", param=f"{param}[{i}]")
        else:
            raise RequestError(f"Invalid content part at '{param}[{i}]'.", param=f"{param}[{i}]")
    return "\n".join(texts)


def _tool_calls_in(raw: object, param: str) -> tuple[ToolCallIn, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RequestError(f"Invalid type for '{param}': expected an array.", param=param)
    calls = []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"Invalid tool call at '{param}[{i}]'.", param=f"{param}[{i}]")
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise RequestError(f"'{param}[{i}].function.arguments' must be a string.",
                               param=f"{param}[{i}].function.arguments")
        call_id = item.get("id")
        calls.append(ToolCallIn(call_id if isinstance(call_id, str) else "",
                                function["name"], arguments))
    return tuple(calls)


def _tool(raw: object, param: str) -> Tool:
    if not isinstance(raw, dict) or raw.get("type") != "function":
        raise RequestError(f"'{param}.type' must be 'function'.", param=f"{param}.type")
    function = raw.get("function")
    if not isinstance(function, dict):
        raise RequestError(f"Missing required parameter: '{param}.function'.",
                           param=f"{param}.function")
    name = function.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise RequestError(f"Invalid '{param}.function.name': must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                           param=f"{param}.function.name")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        raise RequestError(f"'{param}.function.parameters' must be an object.",
                           param=f"{param}.function.parameters")
    description = function.get("description", "")
    return Tool(FunctionSpec(name, parameters), description if isinstance(description, str) else "")


def _tool_choice(raw: object, tools: tuple[Tool, ...]) -> tuple[ToolChoiceMode, str | None]:
    if raw is None:
        return ("auto" if tools else "none"), None
    if raw in ("none", "auto", "required"):
        if raw != "none" and not tools:
            raise RequestError("tool_choice is only allowed when tools are specified.",
                               param="tool_choice")
        return raw, None
    function = raw.get("function") if isinstance(raw, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise RequestError("Invalid value for 'tool_choice'.", param="tool_choice")
    if name not in {tool.function.name for tool in tools}:
        raise RequestError(f"Tool choice '{name}' not found in 'tools'.", param="tool_choice")
    return "function", name


def _response_format(raw: object) -> ResponseFormat:
    if raw is None:
        return ResponseFormat()
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind != "json_schema" or not isinstance(raw, dict):
        raise RequestError("Invalid 'response_format.type': expected 'text', 'json_object' or "
                           "'json_schema'.", param="response_format.type")
    spec = raw.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RequestError("Missing required parameter: 'response_format.json_schema.name'.",
                           param="response_format.json_schema.name")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict | bool):
        raise RequestError("'response_format.json_schema.schema' must be an object.",
                           param="response_format.json_schema.schema")
    return ResponseFormat("json_schema", schema)


def _sampling(body: Mapping[str, Any]) -> Sampling:
    defaults = Sampling()
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("Invalid type for 'seed': expected an integer.", param="seed")
    return Sampling(
        temperature=_number(body, "temperature", defaults.temperature, 0.0, 2.0),
        top_p=_number(body, "top_p", defaults.top_p, 0.0, 1.0),
        top_k=_int(body, "top_k", defaults.top_k, low=-1, high=None),
        min_p=_number(body, "min_p", defaults.min_p, 0.0, 1.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        seed=seed,
    )


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    # max_completion_tokens is the newer name; when both are sent it wins, as on OpenAI.
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            return _int(body, key, 0, low=1, high=None)
    return None


def _stop(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,) if raw else ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise RequestError("Invalid type for 'stop': expected a string or an array of strings.",
                           param="stop")
    if len(raw) > MAX_STOP_SEQUENCES:
        raise RequestError(f"'stop' accepts at most {MAX_STOP_SEQUENCES} sequences.",
                           param="stop")
    return tuple(s for s in raw if s)


def _include_usage(raw: object, stream: bool) -> bool:
    if raw is None:
        return False
    if not stream:
        raise RequestError("The 'stream_options' parameter is only allowed when 'stream' is "
                           "enabled.", param="stream_options")
    if not isinstance(raw, dict):
        raise RequestError("Invalid type for 'stream_options'.", param="stream_options")
    return _bool(raw, "include_usage", False)


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(f"Invalid type for '{key}': expected a boolean.", param=key)
    return value


def _number(body: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"Invalid type for '{key}': expected a number.", param=key)
    if not low <= value <= high:
        raise RequestError(f"Invalid '{key}': expected a value between {low:g} and {high:g}, "
                           f"but got {value} instead.", param=key, code="decimal_out_of_range")
    return float(value)


def _int(body: Mapping[str, Any], key: str, default: int, *, low: int, high: int | None) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"Invalid type for '{key}': expected an integer.", param=key)
    if value < low:
        raise RequestError(f"Invalid '{key}': integer below minimum value. Expected a value >= "
                           f"{low}, but got {value} instead.", param=key,
                           code="integer_below_min_value")
    if high is not None and value > high:
        raise RequestError(f"Invalid '{key}': integer above maximum value. Expected a value <= "
                           f"{high}, but got {value} instead.", param=key,
                           code="integer_above_max_value")
    return value
