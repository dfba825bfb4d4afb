"""until_caller_leaves: the answer, or CallerGone when the caller's disconnect comes first —
the answer's wait cancelled, its clean-up run, and no cancel left behind either way."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from cometgate.api.caller_watch import until_caller_leaves
from cometgate.errors import CallerGone


class Connection:
    """An ASGI receive whose disconnect the test sends."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def receive(self) -> Message:
        await self.closed.wait()
        return {"type": "http.disconnect"}


async def test_the_answer_when_the_caller_stays() -> None:
    connection = Connection()

    async def answer() -> str:
        await asyncio.sleep(0)
        return "answer"

    assert await until_caller_leaves(connection.receive, answer, settling=lambda: False) == (
        "answer")
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_disconnect_cancels_the_wait_and_raises_caller_gone() -> None:
    connection = Connection()
    upstream_waiting = asyncio.Event()
    cleaned_up: list[str] = []

    async def answer() -> str:
        try:
            upstream_waiting.set()
            await asyncio.Event().wait()  # an upstream that never answers
            return "never"
        finally:
            cleaned_up.append("upstream closed")

    async def hang_up() -> None:
        await upstream_waiting.wait()
        connection.closed.set()

    hanging_up = asyncio.create_task(hang_up())
    with pytest.raises(CallerGone) as gone:
        await until_caller_leaves(connection.receive, answer, settling=lambda: False)
    await hanging_up
    assert gone.value.http_status == 499 and gone.value.status == "CANCELLED"
    assert cleaned_up == ["upstream closed"]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the watcher's cancel withdrawn


async def test_a_disconnect_while_the_answer_is_settled_interrupts_nothing() -> None:
    connection = Connection()
    settling = False

    async def answer() -> str:
        nonlocal settling
        settling = True  # the answer exists; it is being recorded
        connection.closed.set()
        for _ in range(3):
            await asyncio.sleep(0)  # the watcher runs and sees the disconnect
        return "recorded"

    assert await until_caller_leaves(connection.receive, answer,
                                     settling=lambda: settling) == "recorded"


async def test_a_cancel_from_elsewhere_is_not_taken_for_the_caller_leaving() -> None:
    connection = Connection()
    started = asyncio.Event()

    async def answer() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    call = asyncio.create_task(
        until_caller_leaves(connection.receive, answer, settling=lambda: False))
    await started.wait()
    call.cancel()  # a server shutting down
    with pytest.raises(asyncio.CancelledError):
        await call
