"""Decode OpenAI Responses `POST /v1/responses` bodies into canonical requests (we serve the
Responses dialect). Pure functions: the route reads the body, calls these, and owns streaming.

| field                                     | becomes                                          |
|-------------------------------------------|--------------------------------------------------|
| model                                     | model                                            |
| instructions, input                       | system + messages (caller_messages)                 |
| tools, tool_choice                        | tools, tool_choice (caller_params)               |
| temperature, top_p, max_output_tokens,    | params (caller_params)                           |
| top_logprobs, include                     |                                                  |
| text                                      | output                                           |
| reasoning                                 | thinking                                         |
| stream, stream_options, store, metadata,  | read by the route or echoed in the answer;       |
| user, safety_identifier, prompt_cache_key | nothing a generation depends on                  |
| previous_response_id                      | the stored conversation, prepended by the route  |
| service_tier, truncation: "auto",         | Untranslated, droppable: they only tune          |
| parallel_tool_calls: false, max_tool_calls|                                                  |
| prompt_cache_retention                    |                                                  |
| background                                | read by the route: the answer is queued, stored, |
|                                           | and generated in a gateway task                  |
| conversation, prompt                      | refused before routing: they need state that     |
|                                           | the gateway does not keep yet                    |
| anything else                             | Untranslated, not droppable                      |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.canonical import GenerateRequest, Untranslated
from cometgate.dialects.estimate import estimated_tokens
from cometgate.dialects.openai.caller_fields import (
    invalid_type,
    invalid_value,
    json_object,
    missing,
    optional_bool,
    optional_object,
    optional_str,
    required_model,
    unsupported_value,
)
from cometgate.dialects.responses.caller_messages import decode_input
from cometgate.dialects.responses.caller_params import (
    decode_include,
    decode_output,
    decode_params,
    decode_thinking,
    decode_tools,
)
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import InvalidRequest

_TRANSLATED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p",
    "max_output_tokens", "top_logprobs", "include", "text", "reasoning",
})
_IGNORED = frozenset({
    "stream", "stream_options", "store", "metadata", "user", "safety_identifier",
    "prompt_cache_key", "previous_response_id", "background",
    "client_metadata",  # the caller's own labels for its logs (Codex sends them)
})
_DROPPABLE = {
    "service_tier": "service tiers are an OpenAI feature",
    "truncation": "automatic truncation of the conversation is an OpenAI feature",
    "parallel_tool_calls": "only OpenAI models can be told to make one call at a time",
    "max_tool_calls": "a cap on built-in tool calls is an OpenAI setting",
    "prompt_cache_retention": "prompt cache retention is an OpenAI setting",
}
_DEFAULTS: dict[str, object] = {
    "truncation": "disabled", "parallel_tool_calls": True, "service_tier": "auto",
}
_UNKNOWN_REASON = "only OpenAI's own Responses API may understand it"
_MEDIA_TYPES = frozenset({"input_image", "input_file"})
_STATEFUL = {
    "conversation": "this gateway does not keep conversations yet; send the whole "
                    "conversation in 'input' instead.",
    "prompt": "stored prompt templates live in OpenAI's own service; send 'instructions' and "
              "'input' instead.",
}
_METADATA_KEYS = 16
_METADATA_KEY_CHARS = 64
_METADATA_VALUE_CHARS = 512


def read_responses_document(body: bytes, *, require_input: bool = True) -> dict[str, Any]:
    """The request body as a JSON object with a string `model` and an `input`; what needs
    state the gateway does not keep (conversation, prompt), and a background request that is
    not stored or is streamed, are refused here, before routing, naming the parameter."""
    document = json_object(body)
    required_model(document)
    if require_input and document.get("input") is None:
        raise missing("input")
    for key, reason in _STATEFUL.items():
        if document.get(key) is not None:
            raise InvalidRequest(f"'{key}' is not supported: {reason}", violations={key: reason})
    optional_bool(document, "store")
    if wants_background(document):
        _check_background(document)
    _check_metadata(document.get("metadata"))
    for key in ("user", "safety_identifier", "prompt_cache_key", "instructions",
                "previous_response_id"):
        optional_str(document, key)
    return document


def wants_background(document: Mapping[str, Any]) -> bool:
    return optional_bool(document, "background") is True


def _check_background(document: Mapping[str, Any]) -> None:
    """A background response is polled from the store, so it must be stored; its events
    cannot be streamed yet (the gateway keeps no event log to resume a stream from)."""
    if not wants_store(document):
        message = "Background mode requires 'store' to be true."
        raise InvalidRequest(message, violations={"background": message})
    if optional_bool(document, "stream") is True:
        reason = ("the gateway does not stream background responses; send 'background' "
                  "without 'stream' and poll GET /v1/responses/{id}.")
        raise InvalidRequest(f"'stream' with 'background' is not supported: {reason}",
                             violations={"stream": reason})


def _check_metadata(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid_type("metadata", "an object", value)
    if len(value) > _METADATA_KEYS:
        raise invalid_value("metadata", f"expected an object with at most {_METADATA_KEYS} "
                                        f"properties, but got {len(value)} instead.")
    for key, item in value.items():
        if len(key) > _METADATA_KEY_CHARS:
            raise invalid_value("metadata", f"keys must be at most {_METADATA_KEY_CHARS} "
                                            "characters long.")
        if not isinstance(item, str):
            raise invalid_type(f"metadata.{key}", "a string", item)
        if len(item) > _METADATA_VALUE_CHARS:
            raise invalid_value(f"metadata.{key}", f"expected a string with maximum length "
                                                   f"{_METADATA_VALUE_CHARS}.")


def decode_responses_request(document: Mapping[str, Any], seal: StateSeal | None = None,
                             ) -> GenerateRequest:
    """`document` is what read_responses_document returned. Raises InvalidRequest, naming
    the first offending parameter as OpenAI names it. `seal` opens reasoning state."""
    conversation = decode_input(document.get("instructions"), document.get("input"), seal)
    tools = decode_tools(document)
    include = decode_include(document)
    output, output_untranslated = decode_output(document)
    foreign = _foreign_fields(document)
    return GenerateRequest(
        model=str(document["model"]),
        messages=conversation.messages,
        system=conversation.system,
        tools=tools.tools,
        tool_choice=tools.choice,
        params=decode_params(document, include),
        output=output,
        thinking=decode_thinking(document),
        extensions={"responses": {u.path: document[u.path] for u in foreign}} if foreign
        else {},
        untranslated=(*conversation.untranslated, *tools.untranslated, *output_untranslated,
                      *foreign),
        web_search=tools.web_search,
    )


def _foreign_fields(document: Mapping[str, Any]) -> tuple[Untranslated, ...]:
    foreign: list[Untranslated] = []
    for key, value in document.items():
        if key in _TRANSLATED or key in _IGNORED or value is None:
            continue
        if key in _DEFAULTS:
            _check_droppable(key, value)
            if value == _DEFAULTS[key] or (key == "service_tier" and value == "default"):
                continue
        if key in _DROPPABLE:
            foreign.append(Untranslated(key, _DROPPABLE[key], droppable=True))
        else:
            foreign.append(Untranslated(key, _UNKNOWN_REASON))
    return tuple(foreign)


def _check_droppable(key: str, value: object) -> None:
    if key == "parallel_tool_calls":
        optional_bool({key: value}, key)
    elif key == "truncation" and value not in ("auto", "disabled"):
        raise unsupported_value(key, value, ("auto", "disabled"))
    elif key == "service_tier" and value not in ("auto", "default", "flex", "scale",
                                                  "priority"):
        raise unsupported_value(key, value, ("auto", "default", "flex", "scale", "priority"))


def wants_stream(document: Mapping[str, Any]) -> bool:
    stream = optional_bool(document, "stream") is True
    if optional_object(document, "stream_options") is not None and not stream:
        raise invalid_value("stream_options",
                            "'stream_options' is only allowed when 'stream' is enabled.")
    return stream


def wants_store(document: Mapping[str, Any]) -> bool:
    """OpenAI stores a response unless told not to."""
    return optional_bool(document, "store") is not False


def estimate_responses(document: Mapping[str, Any]) -> tuple[int, int | None]:
    """(prompt tokens, the caller's output limit if set): a cheap upper estimate for
    admission, with the shared estimate constants."""
    counted = [document.get("instructions"), document.get("input"), document.get("tools")]
    limit = document.get("max_output_tokens")
    valid = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    return estimated_tokens(counted, _is_media), limit if valid else None


def _is_media(part: Mapping[str, Any]) -> bool:
    kind = part.get("type")  # a tool's JSON schema may have a property named "type"
    return isinstance(kind, str) and kind in _MEDIA_TYPES
