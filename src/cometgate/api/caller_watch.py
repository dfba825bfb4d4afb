"""Noticing a caller who hangs up while the gateway works for them.

An ASGI server reports a closed connection only through `receive()` (`http.disconnect`), and
nothing reads it while a handler awaits an upstream's answer: a caller who left would keep its
upstream call, its pooled connection and its concurrency slot until the upstream finished.
A CallerWatch is one watcher task parked on `receive()` beside the work — no polling: it
sleeps until the server wakes it. On a disconnect it cancels the task doing the work (so the
upstream request is cancelled, and its connection closed rather than pooled).

The cancel is asyncio's own, not a cancel scope's: a scope delivers its cancel only to a task
found waiting on an unfinished future, which a task relaying a firehose upstream (its next
piece always already there) may never be; `Task.cancel()` lands at the task's next step.

`until_caller_leaves` covers the wait for a whole answer or a stream's first event; once a
stream has begun, streams.CallerStream watches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

from cometgate.errors import CallerGone

T = TypeVar("T")


class CallerWatch:
    """Started in the task to cancel. `settling()` says the work is past the point where a
    disconnect should interrupt it (the answer exists and is being recorded)."""

    def __init__(self, receive: Receive, *, settling: Callable[[], bool]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.gone = False
        self._withdrawn = False
        self._task = task
        self._settling = settling
        self._watcher = asyncio.get_running_loop().create_task(_disconnect(receive, self._left))

    def caused(self, exc: BaseException) -> bool:
        """Whether `exc` comes of the caller leaving; its cancel is then withdrawn. A cancel
        that is not the watcher's alone (a server shutting down) is not."""
        if not self.gone:
            return False
        return self._withdraw() == 0 or not isinstance(exc, asyncio.CancelledError)

    def stop(self) -> None:
        """Once the work is over: no cancel can come after this."""
        self._watcher.cancel()
        if self.gone:
            self._withdraw()  # the work ended anyway, its cancel swallowed on the way

    def _withdraw(self) -> int:
        """Takes back the watcher's cancel request (once); how many others remain."""
        if not self._withdrawn:
            self._withdrawn = True
            return self._task.uncancel()
        return self._task.cancelling()

    def _left(self) -> None:
        if not self._settling():
            self.gone = True
            self._task.cancel()


async def until_caller_leaves(
    receive: Receive, answer: Callable[[], Awaitable[T]], *, settling: Callable[[], bool],
) -> T:
    """`answer()`, or CallerGone if the caller disconnects first."""
    watch = CallerWatch(receive, settling=settling)
    try:
        return await answer()
    except BaseException as exc:
        if watch.caused(exc):
            raise CallerGone() from None
        raise
    finally:
        watch.stop()


async def _disconnect(receive: Receive, then: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of a body nobody reads
    then()
