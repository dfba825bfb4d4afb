"""Routing by index: only the routes that could match a path's first two segments are tried.

Starlette's router tries every route in order, a regular expression each, until one matches
fully. The Gemini model routes come last (every more specific route must be tried before their
catch-all `models/{name:path}`), so a generate call paid for some seventy failed matches. The
index keeps Starlette's order and its answer: for each pair of leading segments it holds, in the
original order, every route whose own leading segments are that literal or a parameter. A path
whose candidates give no full match (a 405, a redirect to the slash-less form, a 404) is handed
to Starlette's own loop, so those answers stay exactly Starlette's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Lifespan, Receive, Scope, Send

_ANY = object()  # a route segment that is a parameter, or a mount's whole remainder
_NONE = object()  # a path with no such segment (`/healthz` has no second one)
_OTHER = object()  # a request segment no route names literally

Segment: TypeAlias = str | object
Key: TypeAlias = tuple[Segment, Segment]


class IndexedRouter(Router):
    """A Router whose http requests try only their index's candidates first."""

    def __init__(self, routes: Sequence[BaseRoute], *, lifespan: Lifespan[Any] | None) -> None:
        super().__init__(list(routes), lifespan=lifespan)
        self._indexed = 0
        self._index: dict[Key, tuple[BaseRoute, ...]] = {}
        self._first: frozenset[str] = frozenset()
        self._second: frozenset[str] = frozenset()

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._indexed != len(self.routes):  # built once, again if routes were added
                self._build()
            for route in self._candidates(get_route_path(scope)):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)

    def _candidates(self, path: str) -> tuple[BaseRoute, ...]:
        parts = path.split("/", 3)
        first = (parts[1] if parts[1] in self._first else _OTHER) if len(parts) > 1 else _NONE
        second = (parts[2] if parts[2] in self._second else _OTHER) if len(parts) > 2 else _NONE
        return self._index[(first, second)]

    def _build(self) -> None:
        keys = [_route_key(route) for route in self.routes]
        self._first = frozenset(k[0] for k in keys if isinstance(k[0], str))
        self._second = frozenset(k[1] for k in keys if isinstance(k[1], str))
        firsts: list[Segment] = [*self._first, _NONE, _OTHER]
        seconds: list[Segment] = [*self._second, _NONE, _OTHER]
        self._index = {
            (first, second): tuple(route for route, key in zip(self.routes, keys, strict=True)
                                   if _admits(key[0], first) and _admits(key[1], second))
            for first in firsts for second in seconds
        }
        self._indexed = len(self.routes)


def _admits(route_segment: Segment, request_segment: Segment) -> bool:
    """Whether a route with this leading segment may match a request with that one."""
    if route_segment is _ANY:
        return True
    return route_segment == request_segment  # _OTHER equals no route's literal


def _route_key(route: BaseRoute) -> Key:
    """A route's first two path segments: literal text, _NONE where its path ends before, or
    _ANY where a parameter (or a mount, or a route kind without a path) could match anything."""
    if isinstance(route, Route):
        segments: list[Segment] = [*route.path.split("/", 3)[1:3]]
        segments += [_NONE] * (2 - len(segments))  # a route's path ends where its text does
    elif isinstance(route, Mount):
        # What follows a mount's prefix is its own routes' business.
        segments = [*route.path.split("/", 2)[1:2], _ANY, _ANY][:2]
    else:
        return (_ANY, _ANY)
    for position, segment in enumerate(segments):
        if isinstance(segment, str) and "{" in segment:
            # A parameter matches any text, and a `:path` one slashes too: from here on,
            # anything.
            return (_ANY, _ANY) if position == 0 else (segments[0], _ANY)
    return (segments[0], segments[1])
