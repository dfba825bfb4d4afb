"""Gemini's `:countTokens` as an upstream speaks it, for callers of another dialect.

The request is sent as a whole `generateContentRequest` rather than bare `contents`: only that
form counts the system instruction, the tools and the rest of what a generation would be
given. Google requires the inner request to name its model (`models/…`). The answer is
`{"totalTokens": N, …}`; proto3 leaves a zero out, so an answer without the field counts 0.
"""

from __future__ import annotations

from typing import Any

from cometgate.canonical import GenerateRequest
from cometgate.dialects.gemini.upstream_request import encode_request
from cometgate.dialects.upstream_answers import answer_object, unreadable

_MODEL_PREFIXES = ("models/", "tunedModels/")


def encode_count_request(
    request: GenerateRequest, upstream_model: str, *, vouch_unsigned_calls: bool = False
) -> dict[str, Any]:
    inner = encode_request(request, upstream_model, stream=False,
                           vouch_unsigned_calls=vouch_unsigned_calls).body
    model = upstream_model if upstream_model.startswith(_MODEL_PREFIXES) \
        else f"models/{upstream_model}"
    return {"generateContentRequest": {"model": model, **inner}}


def read_total_tokens(body: bytes) -> int:
    count = answer_object(body).get("totalTokens", 0)
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return count
    raise unreadable("the countTokens answer has no totalTokens")
