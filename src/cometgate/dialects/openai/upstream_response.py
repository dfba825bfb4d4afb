"""OpenAI Chat Completions responses → canonical values (its error answers are `upstream_errors`).

Shared by the whole-response decoder here and the stream decoder in `upstream_stream`. Servers that
add fields (vLLM and DeepSeek's `reasoning_content`, Ollama and OpenRouter's `reasoning`) are
read where they carry meaning; everything else is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Part,
    ReasoningPart,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.openai.message_fields import parse_arguments, reasoning_text
from cometgate.dialects.openai.web_search import grounding_of, searches, url_citations
from cometgate.dialects.upstream_answers import answer_object, new_response_id, unreadable

_FINISH = {
    "stop": FinishReason.STOP,
    "length": FinishReason.MAX_TOKENS,
    "tool_calls": FinishReason.STOP,
    "function_call": FinishReason.STOP,  # the legacy name for tool_calls
    "content_filter": FinishReason.SAFETY,
}


def finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(str(value), FinishReason.OTHER)


def wants_thoughts(request: GenerateRequest) -> bool:
    return request.thinking is not None and request.thinking.include_thoughts is True


def enum_text(text: str) -> str:
    """Enum output arrives as a JSON string; Gemini callers expect the bare value."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text


def answer_usage(document: Mapping[str, Any]) -> Usage | None:
    """The usage an answer or stream chunk reports, with the service tier that served it
    when it is not the standard one (OpenAI bills `priority` and `flex` at other rates than
    `default`)."""
    usage = decode_usage(document.get("usage"))
    tier = document.get("service_tier")
    if usage is None or not isinstance(tier, str) or tier in ("", "default", "auto"):
        return usage
    return replace(usage, service_tier=tier)


def decode_usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    completion = _int(usage.get("completion_tokens"))
    reasoning = _int(_nested(usage, "completion_tokens_details", "reasoning_tokens"))
    return Usage(
        prompt_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=max(completion - reasoning, 0),
        thoughts_tokens=reasoning,
        cached_tokens=_int(_nested(usage, "prompt_tokens_details", "cached_tokens")),
    )


def decode_logprobs(choice: Mapping[str, Any]) -> tuple[TokenLogprob, ...]:
    """The per-token log probabilities of one choice or stream chunk choice (empty when none
    were asked for): `logprobs.content`, then `logprobs.refusal`, whose tokens spell a refusal
    that the decoder shows as text."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        return ()
    return _token_logprobs(logprobs.get("content")) + _token_logprobs(logprobs.get("refusal"))


def decode_response(body: bytes, request: GenerateRequest, model_version: str) -> GenerateResponse:
    document = answer_object(body)
    choices = document.get("choices")
    if not isinstance(choices, list):
        raise unreadable("the upstream response has no choices")
    created = document.get("created")
    usage = answer_usage(document) or Usage()
    return GenerateResponse(
        model_version=model_version,
        candidates=tuple(_candidate(choice, request) for choice in choices
                         if isinstance(choice, dict)),
        usage=replace(usage, searches=usage.searches + searches(request)),
        response_id=new_response_id(),
        created=float(created) if isinstance(created, int | float) else time.time(),
    )




def _candidate(choice: Mapping[str, Any], request: GenerateRequest) -> Candidate:
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    reason = finish_reason(choice.get("finish_reason"))
    parts: list[Part] = []
    thought = reasoning_text(message)
    if thought is not None and wants_thoughts(request):
        parts.append(ReasoningPart(thought))
    content = message.get("content")
    if isinstance(content, str) and content:
        is_enum = request.output is not None and request.output.kind == "enum"
        parts.append(TextPart(enum_text(content) if is_enum else content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        # A refusal under structured output: shown as text, finished for safety reasons.
        parts.append(TextPart(refusal))
        reason = FinishReason.SAFETY
    calls, malformed = _tool_calls(message.get("tool_calls"))
    parts.extend(calls)
    if malformed:
        reason = FinishReason.MALFORMED_TOOL_CALL
    grounding = grounding_of(url_citations(message.get("annotations")), request)
    return Candidate(tuple(parts), reason, _int(choice.get("index")), decode_logprobs(choice),
                     grounding)


def _tool_calls(raw: object) -> tuple[list[ToolCallPart], bool]:
    """Well-formed calls, and whether any call had unreadable arguments (those are left
    out, as Gemini leaves out a malformed function call)."""
    calls: list[ToolCallPart] = []
    malformed = False
    for item in raw if isinstance(raw, list) else []:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            malformed = True
            continue
        name = function.get("name")
        arguments = parse_arguments(function.get("arguments"))
        if not isinstance(name, str) or not name or arguments is None:
            malformed = True
            continue
        call_id = item.get("id")
        calls.append(ToolCallPart(name, arguments, call_id if isinstance(call_id, str) else None))
    return calls, malformed


def _token_logprobs(entries: object) -> tuple[TokenLogprob, ...]:
    if not isinstance(entries, list):
        return ()
    return tuple(_token_logprob(item) for item in entries if isinstance(item, dict))


def _token_logprob(item: Mapping[str, Any]) -> TokenLogprob:
    top = item.get("top_logprobs")
    alternatives = tuple(
        (str(alt.get("token", "")), _number(alt.get("logprob")))
        for alt in (top if isinstance(top, list) else []) if isinstance(alt, dict)
    )
    return TokenLogprob(str(item.get("token", "")), _number(item.get("logprob")), alternatives)


def _number(value: object) -> float:
    # A token the model could never pick has no finite log probability.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float("-inf")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _nested(mapping: Mapping[str, Any], outer: str, inner: str) -> object:
    section = mapping.get(outer)
    return section.get(inner) if isinstance(section, dict) else None
