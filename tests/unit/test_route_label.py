"""Metric labels are the matched route's name, not a second table of paths."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from cometgate.api.middleware import MODEL_RESOURCE, UNMATCHED, route_label


async def _endpoint(_: object) -> Response:
    return Response()


def test_the_matched_routes_name_is_the_label() -> None:
    route = Route("/v1/chat/completions", _endpoint, name="chat.completions")
    assert route_label({"route": route, "path_params": {}}) == "chat.completions"


def test_an_unnamed_route_is_labelled_by_its_endpoint() -> None:
    route = Route("/v1/thing/{thing_id}", _endpoint)
    assert route_label({"route": route, "path_params": {"thing_id": "x1"}}) == "_endpoint"


def test_without_a_matched_route_the_label_is_fixed() -> None:
    assert route_label({"path": "/any/thing/at/all"}) == UNMATCHED


def test_a_model_resource_is_labelled_by_its_known_method() -> None:
    route = Route("/v1beta/models/{name:path}", _endpoint, name=MODEL_RESOURCE)

    def label(name: str) -> str:
        return route_label({"route": route, "path_params": {"name": name}})

    assert label("gemini-2.5-flash:streamGenerateContent") == "streamGenerateContent"
    assert label("gemini-2.5-flash:bogusMethod") == "other"
    assert label("gemini-2.5-flash") == MODEL_RESOURCE
    other = Route("/v1/things/{name:path}", _endpoint, name="things")
    assert route_label({"route": other, "path_params": {"name": "a:generateContent"}}) == "things"
