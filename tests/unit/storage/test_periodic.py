"""The loop the sweeps share: a round at start, then one per interval, until closed."""

from __future__ import annotations

import asyncio

from cometgate.storage.periodic import Periodic


async def test_a_round_runs_at_start_then_again_until_closed() -> None:
    rounds: list[int] = []
    third = asyncio.Event()

    async def round_() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 3:
            third.set()

    periodic = Periodic("test-sweep", round_, interval_seconds=0.001)
    periodic.start()
    periodic.start()  # a second start is the same task, not a second loop
    assert [t.get_name() for t in asyncio.all_tasks()].count("test-sweep") == 1
    await asyncio.wait_for(third.wait(), timeout=10)
    await periodic.aclose()
    ran = len(rounds)
    assert "test-sweep" not in [t.get_name() for t in asyncio.all_tasks()]
    await asyncio.sleep(0.01)
    assert len(rounds) == ran  # closed: no round after aclose


async def test_closing_what_never_started_is_harmless() -> None:
    async def round_() -> None:
        raise AssertionError("never runs")

    await Periodic("idle", round_, interval_seconds=1).aclose()
