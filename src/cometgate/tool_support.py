"""Which of Gemini's built-in tools a model serves, and how: natively (its upstream runs the
tool) or emulated (the gateway runs it for an upstream that cannot).

One function per tool answers for one candidate (its provider) of one model; a model serves
a tool as well as its best candidate does. The same functions decide the refusals (the
pipeline asks them before an attempt) and what `GET models/{id}` reports, so the two never
disagree. A tool's function is the one place its availability is decided: a new way to
serve a tool (a search backend, a sandbox, an image endpoint) changes that function and
`GatewayTools`, and both the refusals and the listing follow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cometgate.code_execution import runs_code
from cometgate.drawing import image_output_mode
from cometgate.providers.base import SearchesWeb, ServesGeminiTools
from cometgate.providers.images import MakesImages
from cometgate.routing.resolve import ModelRoute


class ToolSupport(StrEnum):
    NATIVE = "native"
    EMULATED = "emulated"


@dataclass(frozen=True, slots=True)
class GatewayTools:
    """What the gateway can run itself for an upstream that lacks a tool."""

    fetches_pages: bool = False  # URL context: grounding.fetch is enabled
    searches: bool = False  # Google Search grounding: a search backend (grounding.search)
    runs_code: bool = False  # code execution: the sandbox (code_execution.sandbox)


# (candidate's provider, the model's route, the gateway's own tools) → how that candidate
# serves the tool.
SupportOf = Callable[[object, ModelRoute, GatewayTools], ToolSupport | None]


def _gemini(provider: object) -> bool:
    return isinstance(provider, ServesGeminiTools) and provider.serves_gemini_tools()


def url_context_support(provider: object, route: ModelRoute, tools: GatewayTools
                        ) -> ToolSupport | None:
    if _gemini(provider):
        return ToolSupport.NATIVE
    return ToolSupport.EMULATED if tools.fetches_pages else None


def google_maps_support(provider: object, route: ModelRoute, tools: GatewayTools
                        ) -> ToolSupport | None:
    """Only Google has Google Maps: nothing else can serve it, natively or not."""
    return ToolSupport.NATIVE if _gemini(provider) else None


def google_search_support(provider: object, route: ModelRoute, tools: GatewayTools
                          ) -> ToolSupport | None:
    """Natively where the upstream searches (providers.base.SearchesWeb), emulated through
    the operator's search backend, as the model's `grounding` mode allows (auto: the best
    available)."""
    mode = route.grounding
    if mode in ("auto", "native") and isinstance(provider, SearchesWeb) \
            and provider.searches_web():
        return ToolSupport.NATIVE
    if mode in ("auto", "emulate") and tools.searches:
        return ToolSupport.EMULATED
    return None


def code_execution_support(provider: object, route: ModelRoute, tools: GatewayTools
                           ) -> ToolSupport | None:
    """Natively where the upstream runs code (Gemini by pass-through, Anthropic's code
    execution tool: providers.base.RunsCode), emulated in the gateway's sandbox."""
    if _gemini(provider) or runs_code(provider):
        return ToolSupport.NATIVE
    return ToolSupport.EMULATED if tools.runs_code else None


def image_output_support(provider: object, route: ModelRoute, tools: GatewayTools
                         ) -> ToolSupport | None:
    """Gemini's image models answer `responseModalities: ["IMAGE"]` by pass-through; a model
    configured `task: image` draws through its upstream's Images API."""
    if _gemini(provider):
        return ToolSupport.NATIVE
    draws = image_output_mode(route.info) is not None and isinstance(provider, MakesImages)
    return ToolSupport.NATIVE if draws else None


# Keyed by the camelCase names `GET models/{id}` reports them by (Gemini's Tool fields, and
# the image modality).
TOOLS: Mapping[str, SupportOf] = {
    "googleSearch": google_search_support,
    "urlContext": url_context_support,
    "codeExecution": code_execution_support,
    "googleMaps": google_maps_support,
    "imageOutput": image_output_support,
}


def best_support(support: SupportOf, route: ModelRoute, tools: GatewayTools
                 ) -> ToolSupport | None:
    """How well the model serves the tool: natively if any candidate does, else emulated if
    any candidate can be helped, else not at all."""
    found = {support(candidate.provider, route, tools) for candidate in route.candidates}
    return next((level for level in (ToolSupport.NATIVE, ToolSupport.EMULATED)
                 if level in found), None)


def served_tools(route: ModelRoute, tools: GatewayTools) -> dict[str, str | None]:
    """Every tool of `TOOLS` → "native", "emulated" or None, for `GET models/{id}`."""
    return {name: _value(best_support(support, route, tools)) for name, support in TOOLS.items()}


def _value(level: ToolSupport | None) -> str | None:
    return None if level is None else level.value
