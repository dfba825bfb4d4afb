"""Anthropic's `POST /v1/messages/count_tokens` as an upstream speaks it.

Its body is a Messages request without the generation settings: Anthropic refuses
`max_tokens`, `stream`, sampling and stop settings there ("Extra inputs are not permitted"),
so a translated request keeps only what shapes the prompt — system, messages, tools,
tool_choice and thinking, exactly as `encode_request` writes them for a generation. The
answer is `{"input_tokens": N}`.

An Anthropic caller's own count request is forwarded instead: its body with only the model
rewritten, its `anthropic-version` and `anthropic-beta` headers and its `beta` query flag
kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import orjson

from cometgate.canonical import GenerateRequest, GenerationParams
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions, encode_request
from cometgate.dialects.upstream_answers import answer_object, unreadable

COUNT_PATH = "/v1/messages/count_tokens"
# The caller headers that say which API the body is written for; an upstream needs them.
CALLER_HEADERS = ("anthropic-version", "anthropic-beta")
_COUNTED_FIELDS = ("model", "system", "messages", "tools", "tool_choice", "thinking")


def encode_count_request(
    request: GenerateRequest, upstream_model: str, options: AnthropicOptions
) -> dict[str, Any]:
    """The count body for a translated request. Sampling settings are cleared first: they
    change no token of the prompt, and a value Anthropic could not take (a temperature above
    1) must not refuse a count."""
    counted = replace(request, params=GenerationParams())
    body = encode_request(counted, upstream_model, stream=False, options=options).body
    return {name: body[name] for name in _COUNTED_FIELDS if name in body}


def forwarded_count_body(document: Mapping[str, Any], upstream_model: str) -> bytes:
    """The caller's count request for the upstream: its own fields, the upstream's model."""
    return orjson.dumps({**document, "model": upstream_model})


def caller_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The caller's headers an Anthropic upstream must receive with its forwarded body."""
    return tuple((name, headers[name]) for name in CALLER_HEADERS if name in headers)


def caller_query(params: Mapping[str, str]) -> str:
    """The caller's `beta` query flag (the SDKs' beta namespace sends `?beta=true`); nothing
    else of the query is forwarded — it could hold the caller's key to this gateway."""
    return urlencode({"beta": params["beta"]}) if "beta" in params else ""


def forwarded_headers(
    configured: Mapping[str, str], caller: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """The upstream's headers for a forwarded count: the caller's API version wins over the
    configured one (the body is written for it); beta flags are the configured ones and the
    caller's together, each once."""
    headers = dict(configured)
    sent = dict(caller)
    if "anthropic-version" in sent:
        headers["anthropic-version"] = sent["anthropic-version"]
    betas = [*_flags(configured.get("anthropic-beta")), *_flags(sent.get("anthropic-beta"))]
    if betas:
        headers["anthropic-beta"] = ",".join(dict.fromkeys(betas))
    return headers


def read_input_tokens(body: bytes) -> int:
    count = answer_object(body).get("input_tokens")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    raise unreadable("the count_tokens answer has no input_tokens")


def _flags(value: str | None) -> list[str]:
    return [flag.strip() for flag in (value or "").split(",") if flag.strip()]
