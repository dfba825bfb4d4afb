"""google-genai's batch calls as the batch e2e tests make them: a client on a live gateway, a
batch polled until it ends, and its inline answers with the caller's keys."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from google import genai
from google.genai import types

DONE = (types.JobState.JOB_STATE_SUCCEEDED, types.JobState.JOB_STATE_FAILED,
        types.JobState.JOB_STATE_CANCELLED, types.JobState.JOB_STATE_EXPIRED)


@contextlib.asynccontextmanager
async def sdk(base_url: str, key: str) -> AsyncIterator[genai.Client]:
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=base_url,
                                                                      api_version="v1beta"))
    try:
        yield client
    finally:
        await client.aio.aclose()


async def polled(client: genai.Client, name: str, *, every: float, limit: int
                 ) -> types.BatchJob:
    """The batch once it ended; at most `limit` polls `every` seconds apart."""
    for _ in range(limit):
        job = await client.aio.batches.get(name=name)
        if job.state in DONE:
            return job
        await asyncio.sleep(every)
    raise AssertionError(f"{name} did not end: {job}")


def answers(job: types.BatchJob) -> list[tuple[str, str | None]]:
    """Each inline answer as (the caller's metadata key, its text or None)."""
    assert job.dest is not None and job.dest.inlined_responses is not None
    return [((item.metadata or {})["key"], item.response.text if item.response else None)
            for item in job.dest.inlined_responses]
