"""The sentence every dialect says when a built-in tool is not served by a model
(`canonical.refusals.ToolUnavailable`): why, and which models here have it. Each dialect
names the tool as its callers write it and wraps the sentence in its own error shape."""

from __future__ import annotations

from cometgate.canonical.refusals import ToolUnavailable

_LABELS = {"url_context": "URL context", "google_maps": "Google Maps grounding"}


def tool_unavailable_text(refusal: ToolUnavailable, name: str) -> str:
    """`name`: the tool as the caller's dialect spells it ("tools.googleMaps")."""
    label = _LABELS[refusal.tool]
    if refusal.tool == "google_maps":
        why = f"{label} is served only by Google's Gemini API"
    else:
        why = (f"{label} needs an upstream that reads URLs itself (Google's Gemini API) or "
               "the gateway's page fetching (grounding.fetch), and this model has neither")
    where = (f"Models that have it here: {', '.join(refusal.available_on)}."
             if refusal.available_on else "No model here has it.")
    return f"{name} is not supported by models/{refusal.model}: {why}. {where}"
