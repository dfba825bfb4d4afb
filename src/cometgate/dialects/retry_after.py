"""How long an upstream asks us to wait, read one way for every dialect.

`Retry-After` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); OpenAI also sends the finer
`retry-after-ms`, Google's RetryInfo a Duration ("1.5s", `duration_seconds`) and Anthropic
its reset times (`wait_until`). A wait feeds a credential's rest, so what cannot be a wait —
NaN, infinity, a negative or signed number, an exponent, more than MAX_WAIT_SECONDS — is no wait
at all (None), never a rest without end or one that ends before it starts; the caller of these
then falls back to its own default.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import UTC

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# No upstream documents a limit that resets later than a day from now (Gemini's per-day
# quotas reset at midnight Pacific); a longer wait is a typo or a sender's bug, and a credential
# rested on it would be out of service for that long.
MAX_WAIT_SECONDS = 86_400.0


def plausible_wait(seconds: float) -> float | None:
    """`seconds` when it can be a wait: finite, not negative, at most MAX_WAIT_SECONDS."""
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT_SECONDS else None


def delay_seconds(text: str, *, per_second: int = 1) -> float | None:
    """A non-negative decimal number ("30", "1.5") of 1/`per_second` seconds that can be a
    wait, in seconds, or None."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    return plausible_wait(float(text) / per_second)


def duration_seconds(value: object) -> float | None:
    """A google.protobuf.Duration in its JSON form ("43s", "1.5s") as a wait, or None."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    return delay_seconds(value.removesuffix("s"))


def wait_until(moment: float, *, now: float) -> float | None:
    """The wait until an absolute time (a moment already past is 0), or None when it is
    further off than any wait can be."""
    return plausible_wait(max(moment - now, 0.0))


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
    return wait_until(moment, now=time.time() if now is None else now)


def header_wait(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait an answer's headers ask for: `retry-after-ms` when it reads as one (finer),
    else `retry-after`; None when neither does."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None and (wait := delay_seconds(millis, per_second=1000)) is not None:
        return wait
    value = lowered.get("retry-after")
    return None if value is None else retry_after(value, now=now)
