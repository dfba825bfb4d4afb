"""One ASGI layer around every request: path normalisation, request id, access log, metrics.

Plain ASGI rather than BaseHTTPMiddleware, which would buffer streamed bodies and add a task
per request.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cometgate.metrics import Metrics
from cometgate.serial_ids import SerialIds

access_log = logging.getLogger("cometgate.access")

_SLASHES = re.compile(r"/{2,}")
# Callers choose a model resource's `:method` suffix; only Gemini's own become a label value.
_KNOWN_METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens",
                            "embedContent", "batchEmbedContents"})
UNMATCHED = "unmatched"  # every path no route serves: one label, whatever was asked for
MODEL_RESOURCE = "models.get"  # the name of the routes of `models/{name}` (and its methods)


def route_label(scope: Scope) -> str:
    """A small, bounded set of labels for metrics, taken from the route the router matched
    (its name; Starlette names an unnamed route after its endpoint): never the raw path, whose
    model names and ids would make label cardinality unbounded. A model resource called with
    a method (`models/{name}:generateContent`) is labelled by the method."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    label = str(getattr(route, "name", None) or UNMATCHED)
    resource = scope.get("path_params", {}).get("name") if label == MODEL_RESOURCE else None
    if isinstance(resource, str) and ":" in resource:
        method = resource.rpartition(":")[2]
        return method if method in _KNOWN_METHODS else "other"
    return label


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        self._ids = SerialIds()  # request ids: one per request, on the hot path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Google's front end answers `//v1beta/models/...` like the single-slash path.
        if "//" in scope["path"]:
            scope["path"] = _SLASHES.sub("/", scope["path"])
        request_id = self._ids.next()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        first_byte_seen = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, first_byte_seen
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not first_byte_seen:
                first_byte_seen = True
                self.metrics.first_byte(route_label(scope), time.perf_counter() - started)
            await send(message)

        self.metrics.in_flight.inc()
        tally = self.metrics.begin_request()
        try:
            await self.app(scope, receive, send_with_context)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            self.metrics.request(route, status, elapsed)
            self.metrics.overhead(route, tally, elapsed)
            if self.log_requests:
                # The path only: a `?key=` query string would put a credential in the log.
                access_log.info(
                    "%s %s %s %d %.1fms", request_id, scope["method"], scope["path"], status,
                    elapsed * 1000,
                )
