"""Canonical field paths as an Anthropic caller names them, for the dropped-fields report."""

from __future__ import annotations

_PARAMS = {"max_output_tokens": "max_tokens"}
_SECTIONS = {"thinking": "thinking", "output": "output_config"}


def anthropic_path(canonical: str) -> str:
    """"params.top_k" → "top_k", "params.max_output_tokens" → "max_tokens"; message paths
    point into the conversation the caller sent and stay as they are."""
    head, dot, field = canonical.partition(".")
    if head == "params" and dot:
        return _PARAMS.get(field, field)
    return _SECTIONS.get(head, canonical)
