"""Whether a prompt is over its model's context window (`input_token_limit`), so that the
caller hears it as its own dialect's context-length error — whichever upstream found it.

Two ways to know, never the text of an upstream's message:
- the upstream says so in a structured field (OpenAI's and the local worker's error.code
  "context_length_exceeded", read by the outbound codec into `UpstreamError.prompt_too_long`);
- the gateway's own check against the model's limit, with an exact count from the provider
  (`CountsTokens`): before sending, when a cheap upper estimate says the prompt may not fit
  (so a prompt that plainly fits costs nothing; translated requests only — a passed-through
  one is its upstream's to judge), and after an upstream refused the request as the caller's
  fault giving only a status (vLLM, Anthropic and Gemini say it in words) — then only for a
  prompt whose estimate is within reach of the window.
Without an exact count the number is left out, never made up.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from cometgate.canonical import (
    JSON,
    GenerateRequest,
    ModelInfo,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from cometgate.canonical.refusals import PromptTooLong
from cometgate.errors import FailureClass, GatewayError, UpstreamError
from cometgate.providers.base import CountsTokens, Target

# Characters per token that no tokenizer in use goes below for ordinary text (an estimate that
# errs towards more tokens), and what a media part may cost (Gemini bills 258 per image tile).
_CHARS_PER_TOKEN = 3
_MEDIA_TOKENS = 258
# After a status-only refusal, a prompt is counted only when its estimate is at least this
# fraction of the window (1/4: far below where any tokenizer's count of ordinary text lands).
_WITHIN_REACH = 4


async def refusal_before_sending(
    provider: object, request: GenerateRequest, target: Target, model: ModelInfo
) -> PromptTooLong | None:
    limit = model.input_token_limit
    if estimated_tokens(request) <= limit:
        return None
    count = await exact_count(provider, request, target)
    return PromptTooLong(model.id, count, limit) if count is not None and count > limit else None


async def refusal_after_failure(
    error: UpstreamError, provider: object, request: GenerateRequest, target: Target,
    model: ModelInfo,
) -> PromptTooLong | None:
    if error.failure_class is not FailureClass.CALLER_FAULT or error.http_status != 400:
        return None  # not a refusal of the request itself (a 403: something not allowed)
    limit = model.input_token_limit
    if not error.prompt_too_long and estimated_tokens(request) * _WITHIN_REACH < limit:
        return None  # a short prompt's refusal is about something else: no count to pay for
    count = await exact_count(provider, request, target)
    over = count is not None and count > limit
    if not (over or error.prompt_too_long):
        return None
    # A structured "too long" from an upstream whose context is smaller than the configured
    # limit: the count is not over that limit, so it would only confuse.
    return PromptTooLong(model.id, count if over else None, limit)


async def exact_count(provider: object, request: GenerateRequest, target: Target) -> int | None:
    """The provider's own count of the prompt, or None where it cannot count (or fails to:
    a check must not turn one failure into another)."""
    if not isinstance(provider, CountsTokens):
        return None
    try:
        return await provider.count_tokens(request, target)
    except GatewayError:
        return None


def estimated_tokens(request: GenerateRequest) -> int:
    """Runs on every translated request: one pass, text lengths only, no copies."""
    chars = media = 0
    for parts in (request.system, *(message.parts for message in request.messages)):
        for part in parts:
            if isinstance(part, TextPart | ReasoningPart):
                chars += len(part.text)
            elif isinstance(part, ToolCallPart):
                chars += _json_chars(part.arguments)
            elif isinstance(part, ToolResultPart):
                chars += _json_chars(part.response)
            else:
                media += 1  # a blob or a file reference
    for tool in request.tools:
        chars += len(tool.description) + _json_chars(tool.parameters)
    return chars // _CHARS_PER_TOKEN + media * _MEDIA_TOKENS


def _json_chars(value: Mapping[str, JSON] | None) -> int:
    return 0 if value is None else len(orjson.dumps(value))
