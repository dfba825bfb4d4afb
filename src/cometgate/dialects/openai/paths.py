"""Canonical field paths as an OpenAI caller names them, for the dropped-fields report."""

from __future__ import annotations

_PARAMS = {
    "max_output_tokens": "max_completion_tokens",
    "stop_sequences": "stop",
    "candidate_count": "n",
    "response_logprobs": "logprobs",
    "logprobs": "top_logprobs",
}


def openai_path(canonical: str) -> str:
    """"params.top_k" → "top_k"; message paths ("messages[1].parts[0].signature") stay as
    they are: they point into the conversation the caller sent."""
    head, dot, field = canonical.partition(".")
    if head == "params" and dot:
        return _PARAMS.get(field, field)
    if head in ("thinking", "output"):
        return {"thinking": "reasoning_effort", "output": "response_format"}[head]
    return canonical
