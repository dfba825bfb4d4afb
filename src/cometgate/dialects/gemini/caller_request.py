"""Decode Gemini `generateContent` / `countTokens` request bodies into canonical requests.

Two stages, as Google's front end does it: the body is read as proto3 JSON (protojson: unknown
names, wrong types; all such problems in one 400), then the request is validated and translated
(violations.py style messages; all in one 400). Nothing reaches the canonical request unless
both stages pass.

extensions["gemini"] (read only by this dialect's codecs) holds:
  "untranslated": {camelCase path: the field's Gemini JSON} for every `Untranslated` entry,
  "tools": the built-in tool objects, each as its own `Tool` element.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from cometgate.canonical import GenerateRequest, GenerationParams, ToolChoice
from cometgate.dialects.gemini.caller_contents import decode_contents, decode_system_instruction
from cometgate.dialects.gemini.caller_context import DecodeContext
from cometgate.dialects.gemini.caller_generation import (
    decode_generation_config,
    image_shape,
    response_modalities,
)
from cometgate.dialects.gemini.caller_safety import decode_safety_settings
from cometgate.dialects.gemini.caller_tools import decode_tool_config, decode_tools
from cometgate.dialects.gemini.protojson import Normalised, parse
from cometgate.dialects.gemini.schema import COUNT_TOKENS_REQUEST, GENERATE_CONTENT_REQUEST
from cometgate.dialects.gemini.violations import Violations
from cometgate.errors import InvalidRequest

# Top-level fields with no canonical meaning: (proto name, camelCase, droppable, reason).
_FOREIGN_TOP_LEVEL = (
    (
        "cached_content",
        "cachedContent",
        False,
        "context caching is not available for this model yet",
    ),
    ("labels", "labels", True, "billing labels are a Gemini feature"),
    ("service_tier", "serviceTier", True, "service tiers are a Gemini feature"),
    ("store", "store", True, "stored generations are a Gemini feature"),
    (
        "continuation_token",
        "continuationToken",
        False,
        "continuation tokens are only understood by Gemini models",
    ),
)


def read_json_object(body: bytes) -> dict[str, Any]:
    """The JSON root of a request body; Google's wording for what is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            "Invalid JSON payload received. Root element must be a message.", violations={}
        )
    return data


def decode_generate_request(body: bytes, model: str) -> GenerateRequest:
    return decode_generate_document(read_json_object(body), model)


def decode_generate_document(document: dict[str, Any], model: str) -> GenerateRequest:
    """`decode_generate_request` of a body already parsed (by the caller codec, once)."""
    normalised = parse(GENERATE_CONTENT_REQUEST, document)
    violations = Violations("GenerateContentRequest")
    request = _translate(normalised, model, DecodeContext(violations))
    violations.raise_if_any()
    return request


def decode_count_tokens_request(body: bytes, model: str) -> GenerateRequest:
    """`contents` alone, or a whole `generateContentRequest` (whose own `model` is allowed)."""
    normalised = parse(COUNT_TOKENS_REQUEST, read_json_object(body))
    violations = Violations("CountTokensRequest")
    has_contents = bool(normalised.get("contents"))
    inner = normalised.get("generate_content_request")
    if has_contents and inner is not None:
        violations.add("contents", "only one of contents or generate_content_request may be set.")
    elif not has_contents and inner is None:
        violations.add("contents", "contents or generate_content_request must be specified.")
    violations.raise_if_any()
    if inner is None:
        inner = {"contents": normalised["contents"]}
        ctx = DecodeContext(violations)
    else:
        ctx = DecodeContext(violations, "generate_content_request.", "generateContentRequest.")
    request = _translate(inner, model, ctx)
    violations.raise_if_any()
    return request


def _translate(normalised: Normalised, model: str, ctx: DecodeContext) -> GenerateRequest:
    contents = normalised.get("contents") or []
    if not contents:
        ctx.violation("contents", "contents is not specified")
    messages = decode_contents(contents, ctx)
    system = decode_system_instruction(normalised.get("system_instruction", {}), ctx)
    tools = decode_tools(normalised.get("tools", []), ctx)
    tool_choice = ToolChoice()
    if "tool_config" in normalised:
        tool_choice = decode_tool_config(normalised["tool_config"], tools, ctx)
    decode_safety_settings(normalised.get("safety_settings", []), ctx)
    params, output, thinking = GenerationParams(), None, None
    modalities: tuple[str, ...] = ()
    shape = None
    if "generation_config" in normalised:
        params, output, thinking = decode_generation_config(normalised["generation_config"], ctx)
        modalities = response_modalities(normalised["generation_config"])
        shape = image_shape(normalised["generation_config"])
    _record_top_level(normalised, ctx)
    return GenerateRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        params=params,
        output=output,
        thinking=thinking,
        extensions=_extensions(ctx),
        untranslated=tuple(ctx.untranslated),
        web_search=ctx.web_search,
        url_context="urlContext" in ctx.canonical_tools,
        google_maps="googleMaps" in ctx.canonical_tools,
        response_modalities=modalities,
        image_shape=shape,
        code_execution=ctx.code_execution,
    )


def _record_top_level(normalised: Normalised, ctx: DecodeContext) -> None:
    for proto_name, camel, droppable, reason in _FOREIGN_TOP_LEVEL:
        if proto_name in normalised:
            value = normalised[proto_name]
            raw = _base64_text(value) if isinstance(value, bytes) else value
            ctx.untranslated_field(camel, reason, raw, droppable=droppable)


def _base64_text(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _extensions(ctx: DecodeContext) -> dict[str, dict[str, Any]]:
    if not ctx.raw and not ctx.builtin_tools:
        return {}
    gemini: dict[str, Any] = {"untranslated": dict(ctx.raw)}
    if ctx.builtin_tools:
        gemini["tools"] = list(ctx.builtin_tools)
    return {"gemini": gemini}
