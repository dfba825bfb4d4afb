"""Model names → the candidates that can serve them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cometgate.canonical import ModelInfo
from cometgate.routing.plan import Candidate


@dataclass(frozen=True, slots=True)
class ModelRoute:
    info: ModelInfo
    candidates: tuple[Candidate, ...]
    translation: str = "default"  # default | strict | lenient (see settings.ModelSettings)
    grounding: str = "auto"  # auto | native | emulate | off (see settings.ModelSettings)


def model_id(name: str) -> str:
    """Callers name a model as `X` or `models/X`; both mean the same model."""
    return name.removeprefix("models/")


class Router:
    def __init__(self, routes: Sequence[ModelRoute]) -> None:
        self._routes = {route.info.id: route for route in routes}

    def resolve(self, name: str) -> ModelRoute | None:
        return self._routes.get(model_id(name))

    def routes(self) -> list[ModelRoute]:
        return list(self._routes.values())

    def models(self) -> list[ModelInfo]:
        return [route.info for route in self._routes.values()]
