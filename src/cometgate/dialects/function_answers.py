"""The form Gemini documents for a function's answer in a functionResponse — `{"output": …}`
for a result, `{"error": …}` for a failure — which the gateway also uses for a tool result
that is plain text, whatever dialect it came from, so every upstream can read the text back.
"""

from __future__ import annotations

from collections.abc import Mapping

from cometgate.canonical import JSON

OUTPUT_KEY, ERROR_KEY = "output", "error"


def text_answer(text: str, *, failed: bool) -> dict[str, JSON]:
    return {ERROR_KEY if failed else OUTPUT_KEY: text}


def answer_text(response: Mapping[str, JSON]) -> tuple[str, bool] | None:
    """(the text, whether it reports a failed call) when the response is a lone text output
    or error; None for any other response."""
    if len(response) != 1:
        return None
    key, value = next(iter(response.items()))
    if key in (OUTPUT_KEY, ERROR_KEY) and isinstance(value, str):
        return value, key == ERROR_KEY
    return None
