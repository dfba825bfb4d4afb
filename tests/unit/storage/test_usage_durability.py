"""A record acknowledged by the writer survives a kill -9 of the process that wrote it.

A child process writes records through `UsageWriter` from many concurrent tasks, printing each
request_id as soon as its `record()` returns. Once enough are acknowledged (the writer is then
mid-stream, batches in flight), the test SIGKILLs the child, reads every line it managed to
print, and checks that each of those ids is in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import pytest
from sqlalchemy import select

from cometgate.storage.database import open_database
from cometgate.storage.schema import usage_records

ACKNOWLEDGED_BEFORE_KILL = 300
# A guard against a child that hangs, not a timing assertion.
GIVE_UP_AFTER_S = 120

CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from decimal import Decimal
from cometgate.storage.database import open_database
from cometgate.storage.usage import UsageRecord
from cometgate.storage.usage_writer import UsageWriter

async def record_forever(writer, lane):
    n = 0
    while True:
        request_id = f"w{lane}-{n}"
        await writer.record(UsageRecord(
            request_id=request_id, key_id=1, model="flash", provider="local",
            upstream_model="smollm2", dialect="gemini", stream=True, status=200,
            failure_class=None, prompt_tokens=n, output_tokens=1, thoughts_tokens=0,
            cached_tokens=0, cost_usd=Decimal("0.000000001"), latency_ms=1.0, ttfb_ms=0.5,
            created_at=datetime.now(UTC)))
        sys.stdout.write(request_id + "\\n")
        sys.stdout.flush()
        n += 1

async def main():
    database = await open_database(sys.argv[1])
    writer = UsageWriter(database)
    writer.start()
    await asyncio.gather(*(record_forever(writer, lane) for lane in range(16)))

asyncio.run(main())
"""


async def test_every_acknowledged_record_survives_kill_9(database_url: str) -> None:
    # Migrate first, so that the child only writes.
    await (await open_database(database_url)).aclose()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, database_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        acknowledged = await asyncio.wait_for(_read_lines(child.stdout, ACKNOWLEDGED_BEFORE_KILL),
                                              GIVE_UP_AFTER_S)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have died on its own
            child.send_signal(signal.SIGKILL)
    # Whatever the child printed before it died is acknowledged too; a last line cut short by
    # the kill was never a complete acknowledgement.
    rest = (await child.stdout.read()).decode()
    acknowledged += rest.split("\n")[:-1]
    errors = (await child.stderr.read()).decode()
    assert await child.wait() == -signal.SIGKILL, errors
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL, errors

    database = await open_database(database_url)
    try:
        async with database.engine.connect() as conn:
            stored = set((await conn.scalars(select(usage_records.c.request_id))).all())
    finally:
        await database.aclose()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"


async def _read_lines(stream: asyncio.StreamReader, count: int) -> list[str]:
    lines: list[str] = []
    while len(lines) < count:
        line = await stream.readline()
        if not line:
            pytest.fail(f"the child stopped after {len(lines)} acknowledgements")
        lines.append(line.decode().rstrip("\n"))
    return lines
