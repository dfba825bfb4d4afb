"""Safety settings: validated as the Gemini API does, then reported as untranslated (no other
upstream has a comparable filter, and dropping one only loosens filtering)."""

from __future__ import annotations

from cometgate.dialects.gemini.caller_context import DecodeContext
from cometgate.dialects.gemini.protojson import Normalised, to_json
from cometgate.dialects.gemini.schema import message_type

# The categories the Gemini API accepts; the proto enum has older ones it refuses.
ACCEPTED_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
)
_PREDICATE = "element predicate failed: $.category in ({})".format(
    ", ".join(f"HarmCategory.{name}" for name in ACCEPTED_CATEGORIES)
)
_SETTING = message_type("SafetySetting")


def decode_safety_settings(settings: list[Normalised], ctx: DecodeContext) -> None:
    seen: set[str] = set()
    duplicate = False
    for i, setting in enumerate(settings):
        category = setting.get("category", "HARM_CATEGORY_UNSPECIFIED")
        if category not in ACCEPTED_CATEGORIES:
            ctx.violation(f"safety_settings[{i}]", _PREDICATE)
        duplicate = duplicate or category in seen
        seen.add(category)
    if duplicate:
        ctx.plain_violation("safety_settings", "Multiple safety settings with the same category.")
    if settings:
        ctx.untranslated_field(
            "safetySettings",
            "the chosen model has no safety filter to tune",
            [to_json(_SETTING, s) for s in settings],
            droppable=True,
        )
