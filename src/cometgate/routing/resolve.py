"""Model names → where a request goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cometgate.canonical import ModelInfo
from cometgate.providers.base import Provider, Target


@dataclass(frozen=True, slots=True)
class Route:
    info: ModelInfo
    provider_name: str
    provider: Provider
    target: Target


@dataclass(frozen=True, slots=True)
class RouteSpec:
    info: ModelInfo
    provider: str
    upstream_model: str


def model_id(name: str) -> str:
    """Callers name a model as `X` or `models/X`; both mean the same model."""
    return name.removeprefix("models/")


class Router:
    """Resolves a caller's model name to its provider and upstream model. One candidate per
    model for now; the ordered candidate list is where failover will plug in."""

    def __init__(self, specs: Sequence[RouteSpec], providers: Mapping[str, Provider]) -> None:
        self._routes = {
            spec.info.id: Route(
                info=spec.info,
                provider_name=spec.provider,
                provider=providers[spec.provider],
                target=Target(upstream_model=spec.upstream_model, model_version=spec.info.id),
            )
            for spec in specs
        }

    def resolve(self, name: str) -> Route | None:
        return self._routes.get(model_id(name))

    def models(self) -> list[ModelInfo]:
        return [route.info for route in self._routes.values()]
