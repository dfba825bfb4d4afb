"""Gemini batches against live `cometgate serve` processes in front of the fake OpenAI upstream
on a real socket (the fake echoes each question, so every answer shows which request it
belongs to):
- google-genai `batches.create` with inline requests, polled to success: answers in input
  order with the caller's keys, one usage record per request carrying the batch id; list;
  cancel; delete;
- @google/genai (node) `ai.batches.create`, polled to success;
- a gateway killed with SIGKILL mid-batch and started again: the batch completes, every
  request answered exactly once (one result each, one 200 record each, the upstream asked a
  second time only for the requests that were in flight at the kill);
- two replicas on one PostgreSQL share a batch without running any request twice.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.contract.upstreams import served
from tests.e2e.conftest import create_key
from tests.e2e.fake_gateway import (
    ADMIN_KEY,
    MODEL,
    ServeProcess,
    gateway_config,
    gateway_env,
    start_serve,
)
from tests.e2e.genai_batches import answers, polled, sdk
from tests.e2e.genai_js import run_genai_js
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply
from tests.unit.storage.conftest import fresh_postgres_schema_url, postgres_base_url

LEASE_SECONDS = 2
BATCH_CONFIG = (f"batches: {{lease_seconds: {LEASE_SECONDS}, poll_seconds: 0.1, "
                "concurrency: 2}\n")
POLL_SECONDS = 0.1
POLL_LIMIT = 600  # a minute of polls at most


def _requests(*questions: str) -> list[types.InlinedRequest]:
    return [types.InlinedRequest(contents=question, metadata={"key": f"key-{i}"},
                                 config=types.GenerateContentConfig(max_output_tokens=40))
            for i, question in enumerate(questions)]


async def _batch_records(gateway: ServeProcess) -> list[dict[str, str]]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(gateway.base_url + "/admin/usage", params={"format": "csv"},
                                  headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return [row for row in csv.DictReader(io.StringIO(response.text)) if row["batch_id"]]


class Live:
    def __init__(self, gateway: ServeProcess, key: str, upstream: FakeOpenAIUpstream,
                 gate: UpstreamGate, client: genai.Client) -> None:
        self.gateway, self.key, self.upstream, self.gate = gateway, key, upstream, gate
        self.client = client


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    upstream = FakeOpenAIUpstream()
    upstream.default = Reply(echo=True)
    gate = UpstreamGate(upstream.app)
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "batches")
    async with served(gate) as (upstream_url,):
        gateway = await start_serve(tmp_path, "gateway", gateway_config(upstream_url)
                                    + BATCH_CONFIG, data_dir, gateway_env())
        try:
            async with sdk(gateway.base_url, key) as client:
                yield Live(gateway, key, upstream, gate, client)
        finally:
            gateway.stop()


async def test_an_inline_batch_from_google_genai_is_polled_to_success(live: Live) -> None:
    questions = [f"question number {i}" for i in range(5)]
    job = await live.client.aio.batches.create(
        model=MODEL, src=_requests(*questions), config={"display_name": "sdk batch"})
    assert job.name is not None and job.name.startswith("batches/")
    assert job.state in (types.JobState.JOB_STATE_PENDING, types.JobState.JOB_STATE_RUNNING)
    assert (job.display_name, job.model) == ("sdk batch", f"models/{MODEL}")
    done = await _polled(live.client, job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.end_time is not None and done.create_time is not None
    assert answers(done) == [(f"key-{i}", f"You said: {q}") for i, q in enumerate(questions)]
    records = await _batch_records(live.gateway)
    assert len(records) == 5
    assert {(r["batch_id"], r["status"], r["model"]) for r in records} == {
        (job.name.removeprefix("batches/"), "200", MODEL)}
    listed = [j.name async for j in await live.client.aio.batches.list()]
    assert job.name in listed
    await live.client.aio.batches.delete(name=job.name)
    with pytest.raises(genai.errors.ClientError) as missing:
        await live.client.aio.batches.get(name=job.name)
    assert missing.value.code == 404


async def test_a_jsonl_file_batch_from_google_genai_answers_in_a_result_file(
        live: Live, tmp_path: Path) -> None:
    questions = [f"file question {i}" for i in range(4)]
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"".join(orjson.dumps(
        {"key": f"row-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": q}]}]}}
    ) + b"\n" for i, q in enumerate(questions)))
    uploaded = await live.client.aio.files.upload(
        file=source, config={"mime_type": "application/jsonl"})
    assert uploaded.name is not None
    job = await live.client.aio.batches.create(model=MODEL, src=uploaded.name)
    assert job.name is not None
    done = await _polled(live.client, job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert done.dest is not None and done.dest.file_name is not None
    results = await live.client.aio.files.download(file=done.dest.file_name)
    lines = [orjson.loads(line) for line in results.splitlines()]
    assert [(line["key"], line["response"]["candidates"][0]["content"]["parts"][0]["text"])
            for line in lines] == [(f"row-{i}", f"You said: {q}")
                                   for i, q in enumerate(questions)]


async def test_cancel_from_google_genai_stops_what_has_not_started(live: Live) -> None:
    live.gate.close()  # the first two (concurrency 2) are held at the upstream
    job = await live.client.aio.batches.create(model=MODEL, src=_requests("a", "b", "c", "d"))
    assert job.name is not None
    await live.gate.wait_for_waiting(2)
    await live.client.aio.batches.cancel(name=job.name)
    live.gate.open()
    done = await _polled(live.client, job.name)
    assert done.state == types.JobState.JOB_STATE_CANCELLED
    answered = answers(done)
    assert [key for key, _ in answered] == ["key-0", "key-1", "key-2", "key-3"]
    assert answered[2:] == [("key-2", None), ("key-3", None)]
    assert sorted(text or "" for _, text in answered[:2]) == ["You said: a", "You said: b"]
    assert live.gate.served == 2


async def test_an_inline_batch_from_google_genai_js(live: Live) -> None:
    seen = await asyncio.to_thread(run_genai_js, "batches.mjs", live.gateway.base_url,
                                   live.key, MODEL, timeout=120)
    assert seen["states"][-1] == "JOB_STATE_SUCCEEDED"
    assert seen["states"][0] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
    assert seen["displayName"] == "from node"
    assert seen["answers"] == [
        {"key": f"js-{i}", "text": f"You said: {q} question", "error": None}
        for i, q in enumerate(("first", "second", "third"))]
    assert seen["name"] in seen["listed"]


async def test_a_batch_survives_a_kill_9_and_answers_each_request_once(tmp_path: Path) -> None:
    upstream = FakeOpenAIUpstream()
    upstream.default = Reply(echo=True)
    gate = UpstreamGate(upstream.app)
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "restart")
    questions = [f"restart question {i}" for i in range(6)]
    async with served(gate) as (upstream_url,):
        config = gateway_config(upstream_url) + BATCH_CONFIG
        first = await start_serve(tmp_path, "first", config, data_dir, gateway_env())
        try:
            gate.close()
            async with sdk(first.base_url, key) as client:
                job = await client.aio.batches.create(model=MODEL, src=_requests(*questions))
            assert job.name is not None
            await gate.wait_for_waiting(2)  # two requests are in flight upstream
            first.kill9()
        finally:
            first.stop()
        in_flight_at_kill = gate.waiting
        gate.open()  # the killed gateway's requests reach the fake, answered to nobody
        restarted = await start_serve(tmp_path, "restarted", config, data_dir, gateway_env())
        try:
            async with sdk(restarted.base_url, key) as client:
                done = await _polled(client, job.name)
            records = await _batch_records(restarted)
        finally:
            restarted.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert answers(done) == [(f"key-{i}", f"You said: {q}") for i, q in enumerate(questions)]
    assert len(records) == 6 and {r["status"] for r in records} == {"200"}
    asked = collections.Counter(body["messages"][-1]["content"] for body in upstream.requests)
    assert set(asked) == set(questions)
    assert sum(asked.values()) == len(questions) + in_flight_at_kill
    assert sorted(asked.values(), reverse=True)[:in_flight_at_kill] == [2] * in_flight_at_kill


async def test_two_replicas_share_a_batch_without_running_a_request_twice(
        tmp_path: Path) -> None:
    postgres = postgres_base_url()
    upstream = FakeOpenAIUpstream()
    upstream.default = Reply(echo=True)
    # Each replica has its own way to the one fake, so the test sees who ran what.
    gates = (UpstreamGate(upstream.app, delay_seconds=0.05),
             UpstreamGate(upstream.app, delay_seconds=0.05))
    questions = [f"shared question {i}" for i in range(16)]
    async for database_url in fresh_postgres_schema_url(postgres):
        env = gateway_env(COMETGATE_DATABASE_URL=database_url)
        async with served(*gates) as urls:
            replicas = []
            try:
                for name, url in zip(("a", "b"), urls, strict=True):
                    replicas.append(await start_serve(
                        tmp_path, name, gateway_config(url) + BATCH_CONFIG, tmp_path / name,
                        env))
                async with await open_database(database_url) as database:
                    key = (await KeyRepository(database).create("shared"))[1]
                async with sdk(replicas[0].base_url, key) as client:
                    job = await client.aio.batches.create(model=MODEL,
                                                          src=_requests(*questions))
                assert job.name is not None
                async with sdk(replicas[1].base_url, key) as client:
                    done = await _polled(client, job.name)
                # Each replica commits its records on its own time budget; an admin read
                # commits what the replica it asks holds, so ask b first, then read all from a.
                await _batch_records(replicas[1])
                records = await _batch_records(replicas[0])
            finally:
                for replica in replicas:
                    replica.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    assert answers(done) == [(f"key-{i}", f"You said: {q}") for i, q in enumerate(questions)]
    assert len(records) == len(questions)
    asked = collections.Counter(body["messages"][-1]["content"] for body in upstream.requests)
    assert asked == collections.Counter(questions)  # each exactly once
    assert gates[0].served > 0 and gates[1].served > 0
    assert gates[0].served + gates[1].served == len(questions)


async def _polled(client: genai.Client, name: str) -> types.BatchJob:
    return await polled(client, name, every=POLL_SECONDS, limit=POLL_LIMIT)
