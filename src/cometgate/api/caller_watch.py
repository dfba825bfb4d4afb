"""Noticing a caller who hangs up while the gateway waits on an upstream for them.

An ASGI server reports a closed connection only through `receive()` (`http.disconnect`), and
nothing reads it while a handler awaits an upstream's answer: a caller who left would keep its
upstream call, its pooled connection and its concurrency slot until the upstream finished.
`until_caller_leaves` runs the answer with one watcher task parked on `receive()` beside it —
no polling: the watcher sleeps until the server wakes it. On a disconnect the answer's task
is cancelled (so the upstream request is cancelled, its connection closed rather than pooled)
and CallerGone is raised in its place.

Once a stream has begun, Starlette's StreamingResponse watches `receive()` itself and cancels
the stream; this covers the wait before it: a whole answer, or a stream's first event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from cometgate.errors import CallerGone

T = TypeVar("T")


async def until_caller_leaves(
    receive: Receive, answer: Callable[[], Awaitable[T]], *, settling: Callable[[], bool],
) -> T:
    """`answer()`, or CallerGone if the caller disconnects first. `settling()` tells that the
    answer exists and is being settled and recorded: a disconnect then interrupts nothing."""
    task = asyncio.current_task()
    assert task is not None
    left = False

    def on_disconnect() -> None:
        nonlocal left
        if not settling():
            left = True
            task.cancel()

    watcher = asyncio.get_running_loop().create_task(_disconnect(receive, on_disconnect))
    try:
        result = await answer()
    except BaseException as exc:
        # A cancel is ours only if it is the watcher's alone; another (server shutdown) goes on.
        ours = left and (task.uncancel() == 0 or not isinstance(exc, asyncio.CancelledError))
        if ours:
            raise CallerGone() from None
        raise
    finally:
        watcher.cancel()
    if left:  # the answer came anyway, its cancel swallowed on the way: withdraw it
        task.uncancel()
    return result


async def _disconnect(receive: Receive, then: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of a body nobody reads
    then()
