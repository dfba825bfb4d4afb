"""A cheap upper estimate of a request's prompt size, for admission before anything is
decoded: the limiter counts prompt tokens against tpm and reserves a worst-case cost for
budgets. Real counts replace it when the request ends. Each dialect says only which of its
objects are media (an image, a file); everything else counts by its strings' characters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Characters per token for English-like text with the tokenizers in use: an estimate that
# errs towards more tokens, never fewer, so reservations are not too small.
CHARS_PER_TOKEN = 3
MEDIA_PART_TOKENS = 258  # Gemini bills an image or a file part at 258 tokens per tile/page

IsMedia = Callable[[Mapping[str, Any]], bool]


def estimated_tokens(value: object, is_media: IsMedia) -> int:
    chars, media = _walk(value, is_media)
    return chars // CHARS_PER_TOKEN + media * MEDIA_PART_TOKENS + 1


def _walk(value: object, is_media: IsMedia) -> tuple[int, int]:
    """(characters of every string, media objects), not looking inside media objects."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, dict):
        if is_media(value):
            return 0, 1
        value = list(value.values())
    if isinstance(value, list):
        chars = media = 0
        for item in value:
            counted, found = _walk(item, is_media)
            chars, media = chars + counted, media + found
        return chars, media
    return 0, 0
