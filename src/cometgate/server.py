"""Running the app under uvicorn: one process, one event loop."""

from __future__ import annotations

import uvicorn

from cometgate.app import create_app
from cometgate.settings import Settings


def run(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        lifespan="on",
        access_log=False,  # our own access log carries the request id and never the query string
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
