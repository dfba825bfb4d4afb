"""How a model serves each built-in tool: the best of its candidates, from one function per
tool that the pipeline's refusals use too."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from cometgate.canonical import ModelInfo
from cometgate.providers.base import Provider
from cometgate.routing.plan import Candidate
from cometgate.routing.resolve import ModelRoute
from cometgate.tool_support import (
    GatewayTools,
    ToolSupport,
    best_support,
    code_execution_support,
    google_maps_support,
    google_search_support,
    image_output_support,
    served_tools,
    url_context_support,
)

INFO = ModelInfo("m", "M", "", "1", "m", 1000, 100)


def route(*providers: object, grounding: str = "auto") -> ModelRoute:
    candidates = tuple(Candidate(f"p{n}", cast(Provider, p), "up")
                       for n, p in enumerate(providers))
    return ModelRoute(INFO, candidates, grounding=grounding)


MODEL = route()


class GeminiLike:
    def serves_gemini_tools(self) -> bool:
        return True

    def searches_web(self) -> bool:
        return True


class Searcher:
    def searches_web(self) -> bool:
        return True


class Plain:
    pass


FETCHES = GatewayTools(fetches_pages=True)


def test_url_context_is_native_on_gemini_emulated_where_the_gateway_fetches() -> None:
    assert url_context_support(GeminiLike(), MODEL, GatewayTools()) is ToolSupport.NATIVE
    assert url_context_support(Plain(), MODEL, FETCHES) is ToolSupport.EMULATED
    assert url_context_support(Plain(), MODEL, GatewayTools()) is None


def test_maps_is_google_only() -> None:
    assert google_maps_support(GeminiLike(), MODEL, FETCHES) is ToolSupport.NATIVE
    assert google_maps_support(Searcher(), MODEL, FETCHES) is None


def test_search_follows_the_models_grounding_mode() -> None:
    both = GatewayTools(searches=True)
    assert google_search_support(Searcher(), route(), both) is ToolSupport.NATIVE
    assert google_search_support(Plain(), route(), both) is ToolSupport.EMULATED
    assert google_search_support(Searcher(), route(grounding="emulate"), both) \
        is ToolSupport.EMULATED
    assert google_search_support(Plain(), route(grounding="native"), both) is None
    assert google_search_support(Searcher(), route(grounding="off"), both) is None
    assert google_search_support(Plain(), route(), GatewayTools()) is None


def test_a_model_serves_a_tool_as_well_as_its_best_candidate() -> None:
    assert best_support(url_context_support, route(Plain(), GeminiLike()), FETCHES) \
        is ToolSupport.NATIVE
    assert best_support(url_context_support, route(Plain()), FETCHES) is ToolSupport.EMULATED
    assert best_support(google_maps_support, route(Plain(), Searcher()), FETCHES) is None
    assert best_support(google_maps_support, route(), FETCHES) is None


def test_the_listing_names_every_tool() -> None:
    assert served_tools(route(Searcher()), FETCHES) == {
        "googleSearch": "native", "urlContext": "emulated", "codeExecution": None,
        "googleMaps": None, "imageOutput": None}
    assert set(served_tools(route(GeminiLike()), GatewayTools()).values()) == {"native"}


class CodeRunner:
    def runs_code(self) -> bool:
        return True


class Drawer:
    async def make_images(self, request: object, target: object) -> object:
        raise AssertionError("not called")


def test_code_runs_natively_where_the_upstream_runs_it_else_in_the_sandbox() -> None:
    sandbox = GatewayTools(runs_code=True)
    assert code_execution_support(CodeRunner(), MODEL, GatewayTools()) is ToolSupport.NATIVE
    assert code_execution_support(GeminiLike(), MODEL, GatewayTools()) is ToolSupport.NATIVE
    assert code_execution_support(Plain(), MODEL, sandbox) is ToolSupport.EMULATED
    assert code_execution_support(Plain(), MODEL, GatewayTools()) is None


def test_an_image_model_draws_through_its_images_endpoint() -> None:
    drawing = ModelRoute(replace(INFO, output_modalities=("TEXT", "IMAGE")), ())
    assert image_output_support(Drawer(), drawing, GatewayTools()) is ToolSupport.NATIVE
    assert image_output_support(Drawer(), MODEL, GatewayTools()) is None  # a text model
    assert image_output_support(Plain(), drawing, GatewayTools()) is None
