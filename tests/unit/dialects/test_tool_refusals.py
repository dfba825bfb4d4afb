"""A built-in tool a model does not serve, in each caller dialect's own error shape: which
tool, why, and which models here have it."""

from __future__ import annotations

from cometgate.canonical.refusals import ToolUnavailable
from cometgate.dialects.anthropic.refusals import anthropic_refusal
from cometgate.dialects.gemini.refusals import gemini_refusal
from cometgate.dialects.openai.refusals import openai_refusal
from cometgate.errors import InvalidRequest

MAPS = ToolUnavailable("claude", "google_maps", ("gemini-a", "gemini-b"))
URLS = ToolUnavailable("local", "url_context", ())
MAPS_WHY = ("is not supported by models/claude: Google Maps grounding is served only by "
            "Google's Gemini API. Models that have it here: gemini-a, gemini-b.")
URLS_WHY = ("is not supported by models/local: URL context needs an upstream that reads URLs "
            "itself (Google's Gemini API) or the gateway's page fetching (grounding.fetch), "
            "and this model has neither. No model here has it.")


def test_gemini_names_the_tool_field() -> None:
    error = gemini_refusal(MAPS)
    assert isinstance(error, InvalidRequest) and error.http_status == 400
    assert error.message == f"tools.googleMaps {MAPS_WHY}"
    assert error.violations == {"tools.googleMaps": error.message}
    assert gemini_refusal(URLS).message == f"tools.urlContext {URLS_WHY}"


def test_openai_names_the_tool_with_its_param_and_code() -> None:
    error = openai_refusal(MAPS)
    assert error.message == f"The built-in tool 'google_maps' {MAPS_WHY}"
    assert error.violations == {"tools": error.message}
    assert error.code == "unsupported_value"


def test_anthropic_starts_with_the_field_path() -> None:
    error = anthropic_refusal(URLS)
    assert error.message == f"tools: the built-in tool url_context {URLS_WHY}"
    assert error.violations == {"tools": f"the built-in tool url_context {URLS_WHY}"}
