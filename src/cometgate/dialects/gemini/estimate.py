"""A cheap upper estimate of a request's size, for admission before anything is decoded:
the limiter counts prompt tokens against tpm and reserves a worst-case cost for budgets.
Real counts replace it when the request ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.dialects.billable import NOTHING_BILLABLE, Billable
from cometgate.dialects.estimate import CHARS_PER_TOKEN, estimated_tokens
from cometgate.dialects.gemini.billable import billable

_MEDIA_FIELDS = ("inlineData", "inline_data", "fileData", "file_data")


def estimate(body: bytes) -> tuple[int, int | None]:
    """(prompt tokens, maxOutputTokens if the caller set one). An unreadable body estimates
    from its size; it will be refused by the decoder or the upstream anyway."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return len(body) // CHARS_PER_TOKEN + 1, None
    if not isinstance(document, dict):
        return len(body) // CHARS_PER_TOKEN + 1, None
    return estimated_tokens(document, _is_media), _max_output(document)


def _is_media(part: Mapping[str, Any]) -> bool:
    return any(field in part for field in _MEDIA_FIELDS)


def _max_output(document: dict[str, Any]) -> int | None:
    config = document.get("generationConfig") or document.get("generation_config")
    if not isinstance(config, dict):
        return None
    value = config.get("maxOutputTokens", config.get("max_output_tokens"))
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def admission(body: bytes) -> tuple[tuple[int, int | None], Billable]:
    """`estimate(body)` and what the request asks for beyond tokens, from one parse."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    return admission_of(document, len(body))


def admission_of(document: object, size: int) -> tuple[tuple[int, int | None], Billable]:
    """`admission` of a body parsed already (None: it was not JSON) of `size` bytes."""
    if not isinstance(document, dict):
        return (size // CHARS_PER_TOKEN + 1, None), NOTHING_BILLABLE
    return (estimated_tokens(document, _is_media), _max_output(document)), billable(document)
