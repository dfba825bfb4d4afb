"""Liveness and readiness, unauthenticated for orchestrators; metrics for scrapers, behind the
admin key unless the operator opens them (`server.metrics`): the counters name every model and
route in use and the traffic on each, which is not for any caller to read. And `HEAD /`, the
reachability probe of agent CLIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cometgate.errors import NotFound
from cometgate.metrics import CONTENT_TYPE, Metrics

Admit = Callable[[Request], Awaitable[None]]


async def _open(request: Request) -> None:
    return None


def health_routes(
    metrics: Metrics, readiness: Callable[[], Mapping[str, bool]], *,
    metrics_access: str = "open", admit_admin: Admit = _open,
) -> list[BaseRoute]:
    """`metrics_access`: "open", "admin" (`admit_admin` must let the request through) or
    "off" (404, as if there were no such route)."""

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
        if metrics_access == "off":
            raise NotFound(f"Method not found: {request.method} {request.url.path}")
        if metrics_access == "admin":
            await admit_admin(request)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return [
        # Every method, so that only HEAD differs from an unknown path.
        Route("/", root, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
        Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics"),
    ]
