"""Running the app under uvicorn: one event loop per process (several processes:
serve_workers.py)."""

from __future__ import annotations

import gc
import socket

import uvicorn

from cometgate.api.transport_refusals import refusal_body
from cometgate.app import create_app
from cometgate.guarded_protocol import HeadLimits, guarded_protocol
from cometgate.settings import ServerSettings, Settings
from cometgate.worker_role import WorkerRole

KEEP_ALIVE_SECONDS = 75  # nginx's default for the same reason


def run(settings: Settings, *, role: WorkerRole | None = None,
        sockets: list[socket.socket] | None = None) -> None:
    """`sockets`: already listening (the parent's, shared by every worker); None: bind."""
    server = settings.server
    config = uvicorn.Config(
        create_app(settings, role=role),
        host=server.host,
        port=server.port,
        http=guarded_protocol(head_limits(server), refusal_body),
        lifespan="on",
        access_log=False,  # our own access log carries the request id and never the query string
        log_level="info",
        server_header=False,
        timeout_graceful_shutdown=10,
        # Longer than the idle lifetime clients give their pooled connections (httpx: 5 s,
        # the same as uvicorn's default): with equal lifetimes a client can send on a
        # connection in the instant the server closes it, and its call fails with "server
        # disconnected". A new connection's head is still bounded by header_timeout.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Forwarded headers only from the proxies the operator names: uvicorn otherwise
        # believes them from loopback, which lets any local caller choose its address.
        proxy_headers=bool(server.trusted_proxies),
        forwarded_allow_ips=list(server.trusted_proxies),
    )
    settle_collector()
    uvicorn.Server(config).run(sockets=sockets)


def settle_collector() -> None:
    """For a serving process only (tests build many apps in one process and keep the
    defaults). Everything alive once the app is built (modules, settings, routes) lives as long
    as the process: frozen out of the collector's generations, a full collection no longer
    walks it; and a larger young generation collects far less often, each time over the same
    requests in flight. Collections were ~15 % of a saturated worker's time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def head_limits(server: ServerSettings) -> HeadLimits:
    return HeadLimits(server.max_header_bytes, server.max_headers, server.header_timeout)
