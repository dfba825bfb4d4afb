"""Batches handed to an upstream's own batch API (a provider's `batch: upstream`), against a
live `cometgate serve` in front of the fake upstream of each kind, which speaks its
provider's batch API on the wire and logs every call:
- google-genai `batches.create` (inline, and from a JSONL file), polled to success: answers
  in input order with the caller's keys; the fake shows exactly one upstream batch job and
  no live generation; one usage record per request, with the batch id, at the batch price;
- cancel and delete reach the upstream job, and so does the batch's expiry; a restart while
  the job runs resumes polling it without a second submission; two replicas on one
  PostgreSQL submit and settle it once; a transient refusal of the submission falls back to
  the gateway's own workers; a failed upstream job fails the batch with Google-envelope
  errors, a refused request answers with its own; what the upstream's batch cannot run is
  refused at create;
- the configuration refusal of `batch:` on a kind without a batch API.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import types
from sqlalchemy import text

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.contract.upstreams import served
from tests.e2e.conftest import create_key, run_cli
from tests.e2e.fake_gateway import ADMIN_KEY, ServeProcess, gateway_env, start_serve
from tests.e2e.genai_batches import answers, polled, sdk
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.batch_jobs import BatchLog
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.unit.storage.conftest import fresh_postgres_schema_url, postgres_base_url

MODEL = "batched"
POLL_SECONDS = 0.05
POLL_LIMIT = 600
BATCH_CONFIG = "batches: {poll_seconds: 0.05, upstream_poll_seconds: 0.1, lease_seconds: 1}\n"
# USD per million tokens; the batch tier halves them.
PRICES = 'prices: {input: "1000", output: "2000"}'
# What each fake's live answer reports: (prompt tokens, output tokens).
FAKE_USAGE = {"gemini": (8, 6), "anthropic": (7, 5), "openai": (7, 5)}
UPSTREAM_MODEL = {"gemini": "gemini-up", "anthropic": "claude-up", "openai": "gpt-up"}
KINDS = ("gemini", "anthropic", "openai")
SUBMIT_PATH = {"gemini": ":batchGenerateContent", "anthropic": "/v1/messages/batches",
               "openai": "/v1/batches"}
# The fake's live answer (a request the gateway's own workers ran).
LIVE_ANSWER = {"gemini": "Hello from the fake Gemini upstream.",
               "anthropic": "Hello from the fake upstream.",
               "openai": "Hello from the fake upstream."}


@dataclass
class Upstream:
    kind: str
    fake: Any
    app: Any

    @property
    def log(self) -> BatchLog:
        log: BatchLog = self.fake.batches.log
        return log

    def live_calls(self) -> int:
        """Generations the fake served live (not through its batch API)."""
        if self.kind == "gemini":
            return sum(1 for seen in self.fake.requests if "generateContent" in seen.path)
        return len(self.fake.requests)

    def created(self) -> int:
        """Upstream batch jobs created."""
        return len(self.log.jobs)

    def submissions(self) -> int:
        """Calls that asked for a job to be created, taken or refused."""
        return self.log.created(SUBMIT_PATH[self.kind])

    def cancels(self) -> int:
        return sum(1 for method, path in self.log.calls
                   if method == "POST" and path.endswith("cancel"))


def _fake(kind: str) -> Upstream:
    fake = {"gemini": FakeGeminiUpstream, "anthropic": FakeAnthropicUpstream,
            "openai": FakeOpenAIUpstream}[kind]()
    return Upstream(kind, fake, fake.app)


def _config(kind: str, url: str, *, batch: str = "upstream", batches: str = BATCH_CONFIG
            ) -> str:
    base = url + "/v1" if kind == "openai" else url
    return (f"routing: {{retries: 0}}\n{batches}providers:\n"
            f"  up: {{kind: {kind}, base_url: '{base}', api_key: 'env:CG_UP_KEY', "
            f"batch: {batch}}}\n"
            f"models:\n  {MODEL}: {{provider: up, upstream_model: {UPSTREAM_MODEL[kind]}, "
            f"input_token_limit: 8192, output_token_limit: 1000, {PRICES}}}\n")


@dataclass
class Live:
    upstream: Upstream
    gateway: ServeProcess
    client: genai.Client
    key: str
    url: str
    data_dir: Path


@contextlib.asynccontextmanager
async def _live(tmp_path: Path, kind: str, upstream: Upstream | None = None, *,
                batches: str = BATCH_CONFIG) -> AsyncIterator[Live]:
    upstream = upstream or _fake(kind)
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "upstream-batches")
    async with served(upstream.app) as (url,):
        gateway = await _serve(tmp_path, "gateway", kind, url, data_dir, batches=batches)
        try:
            async with sdk(gateway.base_url, key) as client:
                yield Live(upstream, gateway, client, key, url, data_dir)
        finally:
            gateway.stop()


async def _serve(tmp_path: Path, name: str, kind: str, url: str, data_dir: Path, *,
                 batches: str = BATCH_CONFIG, **env: str) -> ServeProcess:
    return await start_serve(tmp_path, name, _config(kind, url, batches=batches), data_dir,
                             gateway_env(CG_UP_KEY="up-secret", **env))


async def _until(check: Any, what: str) -> None:
    for _ in range(POLL_LIMIT):
        if check():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"never: {what}")


async def _raw_batch(live: Live, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(f"{live.gateway.base_url}/v1beta/{name}",
                                  headers={"x-goog-api-key": live.key})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _requests(*questions: str) -> list[types.InlinedRequest]:
    return [types.InlinedRequest(contents=q, metadata={"key": f"key-{i}"})
            for i, q in enumerate(questions)]


async def _batch_records(gateway: ServeProcess, count: int) -> list[dict[str, str]]:
    """The gateway's usage records with a batch id, once `count` of them are committed."""
    rows: list[dict[str, str]] = []
    for _ in range(100):
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(gateway.base_url + "/admin/usage",
                                      params={"format": "csv"},
                                      headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert response.status_code == 200, response.text
        rows = [row for row in csv.DictReader(io.StringIO(response.text)) if row["batch_id"]]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    return rows


def _batch_cost(kind: str) -> Decimal:
    prompt, output = FAKE_USAGE[kind]
    live = (prompt * Decimal(1000) + output * Decimal(2000)) / Decimal(1_000_000)
    return live * Decimal("0.5")


@pytest.mark.parametrize("kind", KINDS)
async def test_an_inline_batch_runs_on_the_upstreams_batch_api(tmp_path: Path,
                                                               kind: str) -> None:
    async with _live(tmp_path, kind) as live:
        questions = [f"{kind} question {i}" for i in range(3)]
        job = await live.client.aio.batches.create(model=MODEL, src=_requests(*questions))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        records = await _batch_records(live.gateway, 3)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [(f"key-{i}", f"You said: {q}") for i, q in enumerate(questions)]
    assert live.upstream.created() == 1
    assert live.upstream.live_calls() == 0
    assert len(records) == 3
    batch_id = job.name.removeprefix("batches/")
    prompt, output = FAKE_USAGE[kind]
    assert {(r["batch_id"], r["status"], r["provider"], int(r["prompt_tokens"]),
             int(r["output_tokens"]), Decimal(r["cost_usd"])) for r in records} == {
        (batch_id, "200", "up", prompt, output, _batch_cost(kind))}


@pytest.mark.parametrize("kind", KINDS[:1])
async def test_a_jsonl_file_batch_runs_on_the_upstreams_batch_api(tmp_path: Path,
                                                                  kind: str) -> None:
    questions = [f"file question {i}" for i in range(3)]
    source = tmp_path / "requests.jsonl"
    source.write_bytes(b"".join(orjson.dumps(
        {"key": f"row-{i}", "request": {"contents": [{"role": "user", "parts": [{"text": q}]}]}}
    ) + b"\n" for i, q in enumerate(questions)))
    upstream = _fake(kind)
    upstream.fake.batches.results_as_file = True  # the upstream answers in a file too
    async with _live(tmp_path, kind, upstream) as live:
        uploaded = await live.client.aio.files.upload(
            file=source, config={"mime_type": "application/jsonl"})
        assert uploaded.name is not None
        job = await live.client.aio.batches.create(model=MODEL, src=uploaded.name)
        assert job.name is not None
        done = await _polled(live.client, job.name)
        assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
        assert done.dest is not None and done.dest.file_name is not None
        results = await live.client.aio.files.download(file=done.dest.file_name)
    lines = [orjson.loads(line) for line in results.splitlines()]
    assert [(line["key"], line["response"]["candidates"][0]["content"]["parts"][0]["text"])
            for line in lines] == [(f"row-{i}", f"You said: {q}")
                                   for i, q in enumerate(questions)]
    assert (live.upstream.created(), live.upstream.live_calls()) == (1, 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_reaches_the_upstream_job(tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.polls_to_finish = 10_000  # runs until cancelled
    upstream.log.script.answered_before_cancel = 1
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("a", "b", "c"))
        assert job.name is not None
        await _until(lambda: upstream.created() == 1, "the upstream job was created")
        await live.client.aio.batches.cancel(name=job.name)
        done = await _polled(live.client, job.name)
        records = await _batch_records(live.gateway, 1)
    assert done.state == types.JobState.JOB_STATE_CANCELLED, done
    assert answers(done) == [("key-0", "You said: a"), ("key-1", None), ("key-2", None)]
    assert upstream.cancels() == 1
    assert len(records) == 1  # the one answer the upstream finished


@pytest.mark.parametrize("kind", KINDS)
async def test_a_restart_resumes_polling_the_same_upstream_job(tmp_path: Path,
                                                               kind: str) -> None:
    upstream = _fake(kind)
    script = upstream.log.script
    script.polls_to_finish = 10_000
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "restart")
    async with served(upstream.app) as (url,):
        first = await _serve(tmp_path, "first", kind, url, data_dir)
        try:
            async with sdk(first.base_url, key) as client:
                job = await client.aio.batches.create(model=MODEL, src=_requests("x", "y"))
            assert job.name is not None
            await _until(lambda: upstream.created() == 1 and _polls(upstream) >= 1,
                         "the upstream job was polled")
            first.kill9()
        finally:
            first.stop()
        script.polls_to_finish = _polls(upstream) + 2  # it ends while the restarted polls
        restarted = await _serve(tmp_path, "restarted", kind, url, data_dir)
        try:
            async with sdk(restarted.base_url, key) as client:
                done = await _polled(client, job.name)
        finally:
            restarted.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [("key-0", "You said: x"), ("key-1", "You said: y")]
    assert (upstream.submissions(), upstream.created(), upstream.live_calls()) == (1, 1, 0)


async def test_settling_again_after_a_crash_records_no_request_twice(tmp_path: Path) -> None:
    """A settler that dies after journaling its records but before storing the results
    leaves the job open; the next settles it again and must not record anything twice. The
    dead settler's state is made by hand: the job and its requests put back as they were."""
    upstream = _fake("gemini")
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "again")
    async with served(upstream.app) as (url,):
        first = await _serve(tmp_path, "first", "gemini", url, data_dir)
        try:
            async with sdk(first.base_url, key) as client:
                job = await client.aio.batches.create(model=MODEL, src=_requests("x", "y"))
                assert job.name is not None
                await _polled(client, job.name)
            before = await _batch_records(first, 2)
        finally:
            first.stop()
        await _reopen(data_dir, job.name.removeprefix("batches/"))
        again = await _serve(tmp_path, "again", "gemini", url, data_dir)
        try:
            async with sdk(again.base_url, key) as client:
                done = await _polled(client, job.name)
            await asyncio.sleep(0.5)  # time for a second record to be committed, were one made
            after = await _batch_records(again, 2)
        finally:
            again.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [("key-0", "You said: x"), ("key-1", "You said: y")]
    assert len(before) == 2
    assert sorted(r["request_id"] for r in after) == sorted(r["request_id"] for r in before)
    assert upstream.created() == 1  # polled again, never submitted again


async def _reopen(data_dir: Path, batch_id: str) -> None:
    """The batch as a settler leaves it when it dies between its records and its results."""
    async with await open_database(f"sqlite+aiosqlite:///{data_dir / 'cometgate.db'}"
                                   ) as database, database.engine.begin() as conn:
        await conn.execute(text(
            "UPDATE batch_upstream_jobs SET state = 'running', owner = NULL, "
            "lease_until = NULL, next_poll_at = created_at WHERE batch_id = :id"),
            {"id": batch_id})
        await conn.execute(text("UPDATE batch_items SET state = 'upstream', result = NULL "
                                "WHERE batch_id = :id"), {"id": batch_id})
        await conn.execute(text("UPDATE batches SET state = 'BATCH_STATE_RUNNING', "
                                "ended_at = NULL WHERE id = :id"), {"id": batch_id})


@pytest.mark.parametrize("kind", KINDS)
async def test_a_transient_refusal_to_submit_falls_back_to_the_gateways_workers(
        tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.submit_statuses = [503]
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("p", "q"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        records = await _batch_records(live.gateway, 2)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [("key-0", LIVE_ANSWER[kind]), ("key-1", LIVE_ANSWER[kind])]
    assert (upstream.submissions(), upstream.created(), upstream.live_calls()) == (1, 0, 2)
    live_cost = _batch_cost(kind) * 2  # live calls at the live price
    assert {Decimal(r["cost_usd"]) for r in records} == {live_cost}
    log = (tmp_path / "gateway.log").read_text(encoding="utf-8")
    assert "the gateway's own workers run this batch instead" in log


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "anthropic"])  # its never fail
async def test_a_failed_upstream_job_fails_the_batch_with_googles_errors(
        tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.job_fails = True
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("f", "g"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        document = await _raw_batch(live, job.name)
    assert done.state == types.JobState.JOB_STATE_FAILED, done
    inlined = document["response"]["inlinedResponses"]["inlinedResponses"]
    assert [entry["metadata"] for entry in inlined] == [{"key": "key-0"}, {"key": "key-1"}]
    for entry in inlined:
        assert set(entry) == {"error", "metadata"}
        assert entry["error"]["code"] == 13
        assert entry["error"]["message"].startswith("The upstream batch job failed: ")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_caller_fault_refusal_to_submit_fails_the_batch_with_it(
        tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.submit_statuses = [400]
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("h"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        document = await _raw_batch(live, job.name)
    assert done.state == types.JobState.JOB_STATE_FAILED, done
    (entry,) = document["response"]["inlinedResponses"]["inlinedResponses"]
    assert entry["metadata"] == {"key": "key-0"}
    assert entry["error"]["code"] == 3  # INVALID_ARGUMENT
    assert "fake batch refusal 400" in entry["error"]["message"]
    assert (upstream.submissions(), upstream.created(), upstream.live_calls()) == (1, 0, 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_request_the_upstream_refused_answers_with_its_error(tmp_path: Path,
                                                                    kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.errored = {"1"}  # the second request
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("m", "n", "o"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        document = await _raw_batch(live, job.name)
        records = await _batch_records(live.gateway, 3)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [("key-0", "You said: m"), ("key-1", None), ("key-2", "You said: o")]
    refused = document["response"]["inlinedResponses"]["inlinedResponses"][1]
    assert refused == {"error": {"code": 3, "message": "fake: this request was refused"},
                       "metadata": {"key": "key-1"}}
    assert sorted(r["status"] for r in records) == ["200", "200", "400"]
    assert document["metadata"]["batchStats"] == {
        "requestCount": "3", "successfulRequestCount": "2", "failedRequestCount": "1",
        "pendingRequestCount": "0"}


@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_upstream_job_expires_the_batch(tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.expires = True
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("s", "t"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        document = await _raw_batch(live, job.name)
    assert done.state == types.JobState.JOB_STATE_EXPIRED, done
    assert [entry["error"] for entry in
            document["response"]["inlinedResponses"]["inlinedResponses"]] == [
        {"code": 4, "message": "The batch expired before this request ran."}] * 2


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "gemini"])  # translated ones
async def test_a_request_the_upstream_batch_cannot_take_is_refused_at_create(
        tmp_path: Path, kind: str) -> None:
    asks_pages = types.GenerateContentConfig(tools=[types.Tool(url_context=types.UrlContext())])
    async with _live(tmp_path, kind) as live:
        with pytest.raises(genai.errors.ClientError) as refused:
            await live.client.aio.batches.create(model=MODEL, src=[
                types.InlinedRequest(contents="fine", metadata={"key": "a"}),
                types.InlinedRequest(contents="read https://example.com",
                                     metadata={"key": "b"}, config=asks_pages)])
        listed = [j async for j in await live.client.aio.batches.list()]
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert refused.value.message == (
        "batch.input_config.requests.requests[1].request: the urlContext tool cannot run in "
        "this model's upstream batch (provider up takes batches to its own batch API); send "
        "this request live, or in a batch of a model whose provider has batch: gateway.")
    assert listed == []
    assert (live.upstream.submissions(), live.upstream.live_calls()) == (0, 0)


@pytest.mark.parametrize("kind", KINDS[:1])
async def test_deleting_a_batch_cancels_its_upstream_job(tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.polls_to_finish = 10_000
    async with _live(tmp_path, kind, upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("d"))
        assert job.name is not None
        await _until(lambda: upstream.created() == 1, "the upstream job was created")
        await live.client.aio.batches.delete(name=job.name)
        await _until(lambda: upstream.cancels() == 1, "the upstream job was cancelled")
        with pytest.raises(genai.errors.ClientError) as missing:
            await live.client.aio.batches.get(name=job.name)
    assert missing.value.code == 404
    assert upstream.live_calls() == 0


@pytest.mark.parametrize("kind", KINDS[2:])
async def test_a_batch_past_its_expiry_cancels_its_upstream_job_and_expires(
        tmp_path: Path, kind: str) -> None:
    upstream = _fake(kind)
    upstream.log.script.polls_to_finish = 10_000
    expiring = BATCH_CONFIG.replace("}", ", expire_hours: 0.0005}")  # 1.8 s
    async with _live(tmp_path, kind, upstream, batches=expiring) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=_requests("e", "f"))
        assert job.name is not None
        done = await _polled(live.client, job.name)
        document = await _raw_batch(live, job.name)
    assert done.state == types.JobState.JOB_STATE_EXPIRED, done
    assert upstream.cancels() == 1
    assert [entry["error"] for entry in
            document["response"]["inlinedResponses"]["inlinedResponses"]] == [
        {"code": 4, "message": "The batch expired before this request ran."}] * 2


async def test_two_replicas_work_one_upstream_job_without_doubling_anything(
        tmp_path: Path) -> None:
    postgres = postgres_base_url()
    kind = "anthropic"
    upstream = _fake(kind)
    upstream.log.script.polls_to_finish = 6  # several polls, by either replica
    async for database_url in fresh_postgres_schema_url(postgres):
        async with served(upstream.app) as (url,):
            replicas = []
            try:
                for name in ("a", "b"):
                    replicas.append(await _serve(tmp_path, name, kind, url, tmp_path / name,
                                                 COMETGATE_DATABASE_URL=database_url))
                async with await open_database(database_url) as database:
                    key = (await KeyRepository(database).create("shared"))[1]
                async with sdk(replicas[0].base_url, key) as client:
                    job = await client.aio.batches.create(model=MODEL,
                                                          src=_requests("r", "s", "t"))
                assert job.name is not None
                async with sdk(replicas[1].base_url, key) as client:
                    done = await _polled(client, job.name)
                records = [*await _batch_records(replicas[1], 0),
                           *await _batch_records(replicas[0], 0)]
                for _ in range(50):  # each replica commits its own records
                    if len({r["request_id"] for r in records}) >= 3:
                        break
                    await asyncio.sleep(0.1)
                    records = [*await _batch_records(replicas[1], 0),
                               *await _batch_records(replicas[0], 0)]
            finally:
                for replica in replicas:
                    replica.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert answers(done) == [("key-0", "You said: r"), ("key-1", "You said: s"),
                              ("key-2", "You said: t")]
    assert (upstream.submissions(), upstream.created(), upstream.live_calls()) == (1, 1, 0)
    results = [c for c in upstream.log.calls if c[1].endswith("/results")]
    assert len(results) == 1  # settled once
    assert len({r["request_id"] for r in records}) == 3


async def test_what_the_translation_drops_is_in_each_usage_record(tmp_path: Path) -> None:
    upstream = _fake("openai")  # OpenAI takes no top_k (accepts_top_k is off)
    top_k = types.GenerateContentConfig(top_k=5)
    async with _live(tmp_path, "openai", upstream) as live:
        job = await live.client.aio.batches.create(model=MODEL, src=[
            types.InlinedRequest(contents="k", metadata={"key": "a"}, config=top_k),
            types.InlinedRequest(contents="l", metadata={"key": "b"})])
        assert job.name is not None
        done = await _polled(live.client, job.name)
        records = await _batch_records(live.gateway, 2)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    (sent,) = upstream.log.jobs.values()
    assert [("top_k" in body, body["messages"][-1]["content"]) for _, body in sent.requests] == [
        (False, "k"), (False, "l")]
    assert sorted(r["dropped"] for r in records) == ["", "generationConfig.topK"]


@pytest.mark.parametrize("kind", KINDS[:1])
async def test_a_gateway_file_in_an_upstream_batch_is_refused_at_create(
        tmp_path: Path, kind: str) -> None:
    source = tmp_path / "note.txt"
    source.write_text("a note", encoding="utf-8")
    async with _live(tmp_path, kind) as live:
        uploaded = await live.client.aio.files.upload(file=source,
                                                      config={"mime_type": "text/plain"})
        assert uploaded.uri is not None
        part = types.Part.from_uri(file_uri=uploaded.uri, mime_type="text/plain")
        with pytest.raises(genai.errors.ClientError) as refused:
            await live.client.aio.batches.create(model=MODEL, src=[
                types.InlinedRequest(contents=[types.Content(role="user", parts=[part])],
                                     metadata={"key": "a"})])
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert refused.value.message == (
        "batch.input_config.requests.requests[0].request: fileData cannot be used in this "
        "model's upstream batch (provider up takes batches to its own batch API); send this "
        "request live, or in a batch of a model whose provider has batch: gateway.")
    assert live.upstream.submissions() == 0


async def test_the_batch_is_spent_from_the_budget_without_eating_the_request_rate(
        tmp_path: Path) -> None:
    kind = "gemini"
    upstream = _fake(kind)
    data_dir = tmp_path / "data"
    made = run_cli("keys", "create", "--name", "limited", "--rpm", "5", "--budget", "100",
                   "--data-dir", str(data_dir))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    async with served(upstream.app) as (url,):
        gateway = await _serve(tmp_path, "gateway", kind, url, data_dir)
        try:
            async with sdk(gateway.base_url, key) as client:
                job = await client.aio.batches.create(model=MODEL,
                                                      src=_requests("1", "2", "3", "4"))
                assert job.name is not None
                done = await _polled(client, job.name)
            await _batch_records(gateway, 4)
            async with httpx.AsyncClient(timeout=30.0) as http:
                balance = (await http.get(f"{gateway.base_url}/v1beta/balance",
                                          headers={"x-goog-api-key": key})).json()
        finally:
            gateway.stop()
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED, done
    assert Decimal(balance["budget"]["spent_total_usd"]) == 4 * _batch_cost(kind)
    # The four answers were settled through one lease: at most one request of the minute.
    assert balance["rate"]["requests_remaining_this_minute"] >= 4


def _polls(upstream: Upstream) -> int:
    return sum(job.polls for job in upstream.log.jobs.values())


def test_batch_upstream_on_a_kind_without_a_batch_api_is_refused_at_start(
        tmp_path: Path) -> None:
    config = tmp_path / "local.yaml"
    config.write_text("providers:\n  local: {kind: local, batch: upstream}\n",
                      encoding="utf-8")
    done = run_cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                   "--host", "127.0.0.1", "--port", "0")
    assert done.returncode != 0
    assert ("providers.local.batch: a local provider has no batch API to hand batches to; "
            "only gemini, openai and anthropic providers take batch: upstream") in done.stderr


async def _polled(client: genai.Client, name: str) -> types.BatchJob:
    return await polled(client, name, every=POLL_SECONDS, limit=POLL_LIMIT)
