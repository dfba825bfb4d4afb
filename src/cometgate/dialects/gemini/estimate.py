"""A cheap upper estimate of a request's size, for admission before anything is decoded:
the limiter counts prompt tokens against tpm and reserves a worst-case cost for budgets.
Real counts replace it when the request ends."""

from __future__ import annotations

from typing import Any

import orjson

# Characters per token for English-like text with the tokenizers in use: an estimate that
# errs towards more tokens, never fewer, so reservations are not too small.
CHARS_PER_TOKEN = 3
MEDIA_PART_TOKENS = 258  # Gemini bills an image or a file part at 258 tokens per tile/page


def estimate(body: bytes) -> tuple[int, int | None]:
    """(prompt tokens, maxOutputTokens if the caller set one). An unreadable body estimates
    from its size; it will be refused by the decoder or the upstream anyway."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return len(body) // CHARS_PER_TOKEN + 1, None
    if not isinstance(document, dict):
        return len(body) // CHARS_PER_TOKEN + 1, None
    chars, media = _walk(document)
    return chars // CHARS_PER_TOKEN + media * MEDIA_PART_TOKENS + 1, _max_output(document)


def _walk(value: Any) -> tuple[int, int]:
    """Characters of every string, except inline data (counted as media parts instead)."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list):
        totals = [_walk(v) for v in value]
        return sum(t[0] for t in totals), sum(t[1] for t in totals)
    if isinstance(value, dict):
        chars = media = 0
        for key, inner in value.items():
            if key in ("inlineData", "inline_data", "fileData", "file_data"):
                media += 1
                continue
            c, m = _walk(inner)
            chars, media = chars + c, media + m
        return chars, media
    return 0, 0


def _max_output(document: dict[str, Any]) -> int | None:
    config = document.get("generationConfig") or document.get("generation_config")
    if not isinstance(config, dict):
        return None
    value = config.get("maxOutputTokens", config.get("max_output_tokens"))
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None
