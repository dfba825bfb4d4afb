"""A gateway worker of `serve --workers N` follows the health of the local model its parent
supervises: ready while it answers 200 with the token, not ready otherwise; it never starts it."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.contract.upstreams import served

from cometgate.providers.local.supervisor import SharedWorker, WorkerWatch

TOKEN = "t0ken"
WAIT_SECONDS = 10.0  # a bound for a loaded machine, not a timing under test


def model_worker(state: dict[str, int]) -> Starlette:
    async def health(request: Request) -> Response:
        admitted = request.headers.get("authorization") == f"Bearer {TOKEN}"
        return Response(status_code=state["status"] if admitted else 401)

    return Starlette(routes=[Route("/health", health)])


async def until(watch: WorkerWatch, expected: bool) -> None:
    step = 0.02
    for _ in range(int(WAIT_SECONDS / step)):
        if watch.ready is expected:
            return
        await asyncio.sleep(step)
    raise AssertionError(f"ready stayed {watch.ready} for {WAIT_SECONDS} s")


async def test_readiness_follows_the_shared_worker_health() -> None:
    state = {"status": 503}
    async with served(model_worker(state)) as (url,):
        port = int(url.rsplit(":", 1)[1])
        watch = WorkerWatch("127.0.0.1", SharedWorker(port, TOKEN))
        assert watch.base_url == url and watch.token == TOKEN
        watch.start()
        try:
            await asyncio.sleep(0.3)
            assert not watch.ready  # loading: 503
            state["status"] = 200
            await until(watch, True)
            state["status"] = 503
            await until(watch, False)
        finally:
            await watch.aclose()
        assert not watch.ready


async def test_a_wrong_token_is_never_ready() -> None:
    async with served(model_worker({"status": 200})) as (url,):
        watch = WorkerWatch("127.0.0.1", SharedWorker(int(url.rsplit(":", 1)[1]), "other"))
        watch.start()
        await asyncio.sleep(0.5)
        assert not watch.ready
        await watch.aclose()
