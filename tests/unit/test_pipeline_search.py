"""How the gateway says a model serves Google Search grounding (for the models listing): from
its upstreams' own searches, the operator's search backend and the model's grounding mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import httpx
import pytest

from cometgate.canonical import ModelInfo
from cometgate.grounding.search_backends import SearchBackend
from cometgate.metrics import Metrics
from cometgate.pipeline import Gateway
from cometgate.providers.base import Provider
from cometgate.routing.failover import Failover
from cometgate.routing.health import Health
from cometgate.routing.plan import Candidate, Planner
from cometgate.routing.resolve import ModelRoute, Router
from cometgate.settings import RoutingSettings, SearchBackendSettings


class Upstream:
    """Only what routing looks at; nothing here is ever called."""

    def __init__(self, searches: bool) -> None:
        self._searches = searches

    def searches_web(self) -> bool:
        return self._searches


def route(model: str, *searches: bool, grounding: str = "auto") -> ModelRoute:
    info = ModelInfo(model, model, "", "1", model, 100, 10)
    candidates = tuple(Candidate(f"p{n}", cast(Provider, Upstream(s)), "up")
                       for n, s in enumerate(searches))
    return ModelRoute(info, candidates, grounding=grounding)


ROUTES = [route("plain", False), route("mixed", False, True), route("off", True, grounding="off"),
          route("native-only", False, grounding="native"),
          route("emulate", True, grounding="emulate")]


def gateway(search: SearchBackend | None) -> Gateway:
    health = Health(RoutingSettings(retries=0))
    return Gateway(Router(ROUTES), Metrics(), planner=Planner(health),
                   failover=Failover(RoutingSettings(retries=0), health), search=search)


@pytest.fixture
async def backend() -> AsyncIterator[SearchBackend]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    search = SearchBackend(SearchBackendSettings("searxng", "http://s"), client=client)
    yield search
    await search.aclose()


def test_without_a_backend_only_upstream_searches_count() -> None:
    ways = gateway(None)
    assert [ways.search_grounding(r.info.id) for r in ROUTES] == [
        None, "native", None, None, None]
    assert ways.search_grounding("unknown") is None


def test_with_a_backend_every_model_not_turned_off_has_it(backend: SearchBackend) -> None:
    ways = gateway(backend)
    assert [ways.search_grounding(r.info.id) for r in ROUTES] == [
        "emulated", "native", None, None, "emulated"]
