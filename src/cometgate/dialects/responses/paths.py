"""Canonical field paths as a Responses caller names them, for the dropped-fields report."""

from __future__ import annotations

_PARAMS = {"max_output_tokens": "max_output_tokens", "logprobs": "top_logprobs",
           "response_logprobs": "include"}
_SECTIONS = {"thinking": "reasoning", "output": "text.format"}


def responses_path(canonical: str) -> str:
    """"params.top_p" → "top_p", "thinking.level" → "reasoning"; message paths stay as they
    are (they point into the conversation the caller sent)."""
    head, dot, rest = canonical.partition(".")
    if head == "params" and dot:
        return _PARAMS.get(rest, rest)
    return _SECTIONS.get(head, canonical)
