"""Rate-limit response headers, in the x-ratelimit-* form most clients already understand."""

from __future__ import annotations

from cometgate.limits.policy import LimitState


def rate_limit_headers(state: LimitState) -> dict[str, str]:
    limits = state.limits
    headers: dict[str, str] = {}
    if limits.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(limits.rpm)
        headers["x-ratelimit-remaining-requests"] = str(state.remaining_requests_this_minute)
        headers["x-ratelimit-reset-requests"] = state.minute_resets_at.isoformat()
    if limits.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(limits.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(state.remaining_tokens_this_minute)
    if limits.rpd is not None:
        headers["x-ratelimit-limit-requests-day"] = str(limits.rpd)
        headers["x-ratelimit-remaining-requests-day"] = str(state.remaining_requests_today)
    return headers
