"""How long an upstream asks us to wait, read one way for every dialect.

`Retry-After` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); OpenAI also sends the finer
`retry-after-ms`, and Google's RetryInfo a Duration ("1.5s", read by the Gemini codec with
`delay_seconds`). A wait feeds a credential's rest, so what cannot be a wait — NaN, infinity,
a negative or signed number, an exponent — is no wait at all (None), never a rest without end
or one that ends before it starts.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def delay_seconds(text: str) -> float | None:
    """A non-negative, finite decimal number of seconds ("30", "1.5"), or None."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    seconds = float(text)
    return seconds if math.isfinite(seconds) else None


def retry_after(value: str, *, now: float | None = None) -> float | None:
    """One Retry-After value in seconds from `now` (a date already past is 0), or None when
    it is neither delta-seconds nor an HTTP-date."""
    seconds = delay_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        if when.tzinfo is None:  # "-0000": a time in UTC without a known zone
            when = when.replace(tzinfo=UTC)
        moment = when.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(moment - (time.time() if now is None else now), 0.0)


def header_wait(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait an answer's headers ask for: `retry-after-ms` when it reads as one (finer),
    else `retry-after`; None when neither does."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None and (wait := delay_seconds(millis)) is not None:
        return wait / 1000
    value = lowered.get("retry-after")
    return None if value is None else retry_after(value, now=now)
