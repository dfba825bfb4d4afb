"""One ASGI layer around every request: path normalisation, request id, access log, metrics.

Plain ASGI rather than BaseHTTPMiddleware, which would buffer streamed bodies and add a task
per request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cometgate.metrics import Metrics

access_log = logging.getLogger("cometgate.access")

_SLASHES = re.compile(r"/{2,}")
_METHOD = re.compile(r":([A-Za-z]+)$")
_KNOWN_METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens",
                            "embedContent", "batchEmbedContents"})
# The OpenAI and Anthropic surfaces, with or without the version segment.
_DIALECT_ROUTES = {
    "/chat/completions": "chat.completions",
    "/embeddings": "embeddings",
    "/messages": "messages",
    "/messages/count_tokens": "messages.count_tokens",
}


def route_label(method: str, path: str) -> str:
    """A small, bounded set of labels for metrics: never the raw path (model names and ids
    would make label cardinality unbounded)."""
    if path in ("/healthz", "/readyz", "/metrics"):
        return path.lstrip("/")
    dialect_route = _DIALECT_ROUTES.get(path.removeprefix("/v1"))
    if dialect_route is not None:
        return dialect_route
    if "/models" in path:
        found = _METHOD.search(path)
        if found:
            # Callers choose the suffix; only known methods may become a label value.
            return found.group(1) if found.group(1) in _KNOWN_METHODS else "other"
        return "models.get" if path.rstrip("/").split("/")[-1] != "models" else "models.list"
    return "other"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Google's front end answers `//v1beta/models/...` like the single-slash path.
        scope["path"] = _SLASHES.sub("/", scope["path"])
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        route = route_label(scope["method"], scope["path"])
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
                self.metrics.first_byte(route, time.perf_counter() - started)
            await send(message)

        self.metrics.in_flight.inc()
        tally = self.metrics.begin_request()
        try:
            await self.app(scope, receive, send_with_context)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            self.metrics.request(route, status, elapsed)
            self.metrics.overhead(route, tally, elapsed)
            if self.log_requests:
                # The path only: a `?key=` query string would put a credential in the log.
                access_log.info(
                    "%s %s %s %d %.1fms", request_id, scope["method"], scope["path"], status,
                    elapsed * 1000,
                )
