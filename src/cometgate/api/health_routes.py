"""Liveness, readiness and metrics: unauthenticated, for orchestrators and scrapers; and
`HEAD /`, the reachability probe of agent CLIs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cometgate.errors import NotFound
from cometgate.metrics import CONTENT_TYPE, Metrics


def health_routes(metrics: Metrics, readiness: Callable[[], Mapping[str, bool]]) -> list[BaseRoute]:
    async def root(request: Request) -> Response:
        # Claude Code probes its base URL with `HEAD /` before its first call, without a key.
        # Nothing else is served at `/`: any other method gets the 404 of an unknown path.
        if request.method != "HEAD":
            raise NotFound(f"Method not found: {request.method} {request.url.path}")
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Ready only when every supervised local model has loaded and answers its health check.
        upstreams = dict(readiness())
        ready = all(upstreams.values())
        return JSONResponse(
            {"status": "ready" if ready else "starting", "upstreams": upstreams},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return [
        # Every method, so that only HEAD differs from an unknown path.
        Route("/", root, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
