"""Decode OpenAI `POST /v1/chat/completions` bodies into canonical requests (we serve the
OpenAI dialect). Pure functions: the route reads the body, calls these, and owns streaming.

Top-level fields and what becomes of them:

| field                                   | becomes                                             |
|-----------------------------------------|-----------------------------------------------------|
| model, messages                         | model, system + messages (caller_messages)          |
| tools, tool_choice                      | tools, tool_choice (caller_params)                  |
| temperature, top_p, top_k, max_tokens,  | params (caller_params)                              |
| max_completion_tokens, stop, n, seed,   |                                                     |
| presence/frequency_penalty, logprobs,   |                                                     |
| top_logprobs                            |                                                     |
| response_format                         | output                                              |
| reasoning_effort                        | thinking                                            |
| stream, stream_options                  | read by the route (wants_stream, …), not here       |
| user, metadata, store, safety_identifier| ignored: bookkeeping for OpenAI's own dashboard,    |
| prompt_cache_key                        | nothing a generation depends on                     |
| parallel_tool_calls: false, logit_bias, | Untranslated, droppable: they only tune the output  |
| service_tier, verbosity, prediction,    |                                                     |
| prompt_cache_retention, …_options       |                                                     |
| anything else (audio, modalities other  | Untranslated, not droppable: a request for          |
| than ["text"], web_search_options,      | something only an OpenAI model can do               |
| functions, function_call, unknown names)|                                                     |

Every Untranslated top-level field also rides in extensions["openai"] with the caller's value,
so an OpenAI-compatible upstream reached by translation still receives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.canonical import JSON, GenerateRequest, Untranslated
from cometgate.dialects.estimate import estimated_tokens
from cometgate.dialects.openai.caller_fields import (
    invalid_type,
    invalid_value,
    json_object,
    missing,
    optional_bool,
    optional_object,
    required_model,
)
from cometgate.dialects.openai.caller_messages import decode_messages
from cometgate.dialects.openai.caller_params import (
    decode_output,
    decode_params,
    decode_thinking,
    decode_tools,
)
from cometgate.errors import InvalidRequest

_TRANSLATED = frozenset({
    "model", "messages", "tools", "tool_choice", "temperature", "top_p", "top_k", "max_tokens",
    "max_completion_tokens", "stop", "n", "seed", "presence_penalty", "frequency_penalty",
    "logprobs", "top_logprobs", "response_format", "reasoning_effort",
})
_IGNORED = frozenset({
    "stream", "stream_options", "user", "metadata", "store", "safety_identifier",
    "prompt_cache_key",
})
_DROPPABLE = {
    "logit_bias": "token biases are tied to OpenAI's tokenizer",
    "service_tier": "service tiers are an OpenAI feature",
    "verbosity": "verbosity is an OpenAI setting",
    "prediction": "predicted outputs are an OpenAI feature",
    "prompt_cache_retention": "prompt cache retention is an OpenAI setting",
    "prompt_cache_options": "prompt cache options are an OpenAI setting",
    "parallel_tool_calls": "only OpenAI models can be told to make one call at a time",
}
_REASONS = {
    "audio": "audio output is only produced by OpenAI models",
    "modalities": "only OpenAI models produce non-text output",
    "web_search_options": "web search is only done by OpenAI models",
    "functions": "legacy functions are only understood by OpenAI models; use tools",
    "function_call": "legacy function_call is only understood by OpenAI models; use tool_choice",
}
_UNKNOWN_REASON = "only an OpenAI-compatible model may understand it"
_MEDIA_KEYS = frozenset({"image_url", "input_audio", "file"})


def read_chat_document(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object whose `model` is a string and whose `messages` is a
    non-empty array; anything else is refused before routing."""
    document = json_object(body)
    required_model(document)
    messages = document.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            violations={"messages": "must not be empty"},
        )
    return document


def decode_chat_request(document: Mapping[str, Any]) -> GenerateRequest:
    """`document` is what read_chat_document returned. Raises InvalidRequest, naming the
    first offending parameter as OpenAI names it."""
    conversation = decode_messages(list(document["messages"]))
    tools = decode_tools(document)
    foreign = _foreign_fields(document)
    return GenerateRequest(
        model=str(document["model"]),
        messages=conversation.messages,
        system=conversation.system,
        tools=tools.tools,
        tool_choice=tools.choice,
        params=decode_params(document),
        output=decode_output(document),
        thinking=decode_thinking(document),
        extensions={"openai": {u.path: document[u.path] for u in foreign}} if foreign else {},
        untranslated=(*conversation.untranslated, *tools.untranslated, *foreign),
    )


def _foreign_fields(document: Mapping[str, Any]) -> tuple[Untranslated, ...]:
    foreign: list[Untranslated] = []
    for key, value in document.items():
        if key in _TRANSLATED or key in _IGNORED or value is None or _is_default(key, value):
            continue
        if key in _DROPPABLE:
            foreign.append(Untranslated(key, _DROPPABLE[key], droppable=True))
        else:
            foreign.append(Untranslated(key, _REASONS.get(key, _UNKNOWN_REASON)))
    return tuple(foreign)


def _is_default(key: str, value: JSON) -> bool:
    """Values that ask for nothing beyond what every model does."""
    if key == "parallel_tool_calls":
        return optional_bool({key: value}, key) is True
    return key == "modalities" and value == ["text"]


def wants_stream(document: Mapping[str, Any]) -> bool:
    return optional_bool(document, "stream") is True


def wants_usage_in_stream(document: Mapping[str, Any]) -> bool:
    """`stream_options.include_usage`; stream_options is refused without `stream: true`,
    as OpenAI refuses it."""
    options = optional_object(document, "stream_options")
    if options is None:
        return False
    if not wants_stream(document):
        raise invalid_value("stream_options",
                            "'stream_options' is only allowed when 'stream' is enabled.")
    return optional_bool(options, "include_usage", "stream_options.include_usage") is True


def estimate_chat(document: Mapping[str, Any]) -> tuple[int, int | None]:
    """(prompt tokens, the caller's output token limit if set): a cheap upper estimate for
    admission, with Gemini's estimate constants (text by characters, a fixed cost per image)."""
    counted = [document.get("messages"), document.get("tools")]
    return estimated_tokens(counted, _is_media), _max_output(document)


def _is_media(part: Mapping[str, Any]) -> bool:
    return any(isinstance(part.get(key), dict) for key in _MEDIA_KEYS)


def _max_output(document: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = document.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
