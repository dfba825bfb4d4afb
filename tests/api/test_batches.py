"""Gemini's Batch API through the app: create with inline requests, the batch resource polled
to success with each answer in input order and its caller's metadata, list (paged), cancel,
delete; one usage record per request carrying the batch's id; and every refusal in Google's
envelope (missing or another key's batch, bad shape, unknown model, a batch the budget cannot
cover). The fake upstream holds its answers on an event where a test needs a batch to stay
unfinished."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.dialects.gemini.estimate import estimate
from cometgate.providers.base import Provider
from cometgate.settings import BatchSettings, Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from cometgate.worker_role import WorkerRole
from tests.api.conftest import SettingsBuilder
from tests.api.test_files import upload
from tests.api.test_metering import (
    INPUT_PRICE,
    MODEL,
    OUTPUT_PRICE,
    PRICED_MODELS,
    _gated_provider,
)
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

CREATE = f"/v1beta/models/{MODEL}:batchGenerateContent"
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
MAX_OUTPUT = 100


def _request(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"maxOutputTokens": MAX_OUTPUT}}


def _batch(*texts: str, name: str = "my batch") -> dict[str, Any]:
    requests = [{"request": _request(t), "metadata": {"key": f"k{i}"}}
                for i, t in enumerate(texts)]
    return {"batch": {"displayName": name, "inputConfig": {"requests": {"requests": requests}}}}


class Gateway:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, app: Any,
                 upstream: FakeOpenAIUpstream, gate: UpstreamGate) -> None:
        self.http, self.settings, self.app, self.upstream = http, settings, app, upstream
        self.gate = gate

    async def key(self, name: str, **policy: Any) -> str:
        async with await open_database(self.settings.database_url) as database:
            return (await KeyRepository(database).create(name, **policy))[1]

    async def records(self) -> list[UsageRecord]:
        await self.app.state.usage_log.flush()
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()

    async def done(self, name: str, key: str) -> dict[str, Any]:
        """The batch once it has ended (its requests run in the background)."""
        for _ in range(500):
            body: dict[str, Any] = (await self.http.get(
                f"/v1beta/{name}", headers={"x-goog-api-key": key})).json()
            if body.get("done"):
                return body
            await self.app.state.batch_runner.idle()
            await asyncio.sleep(0.01)
        raise AssertionError(f"{name} did not end: {body}")


@pytest.fixture
async def gateway(build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream
                  ) -> AsyncIterator[Gateway]:
    settings = build_settings(models=PRICED_MODELS)
    settings = replace(settings, batches=BatchSettings(poll_seconds=0.05, concurrency=2))
    async with _opened(settings, upstream) as opened:
        yield opened


def _google_error(response: httpx.Response, code: int, status: str, message: str) -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert (error["code"], error["status"], error["message"]) == (code, status, message)


async def test_an_inline_batch_runs_to_success_with_answers_in_order(gateway: Gateway) -> None:
    key = await gateway.key("batcher")
    gateway.upstream.replies = [Reply(text=f"answer {i}") for i in range(3)]
    created = await gateway.http.post(CREATE, json=_batch("one", "two", "three"),
                                      headers={"x-goog-api-key": key})
    assert created.status_code == 200, created.text
    operation = created.json()
    name = operation["name"]
    assert name.startswith("batches/")
    metadata = operation["metadata"]
    assert (metadata["@type"], metadata["model"], metadata["displayName"], metadata["name"]) == (
        BATCH_TYPE, f"models/{MODEL}", "my batch", name)
    assert metadata["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
    assert metadata["batchStats"]["requestCount"] == "3"
    done = await gateway.done(name, key)
    assert done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert done["metadata"]["batchStats"] == {
        "requestCount": "3", "successfulRequestCount": "3", "failedRequestCount": "0",
        "pendingRequestCount": "0"}
    inlined = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert done["response"]["inlinedResponses"]["inlinedResponses"] == inlined
    assert [item["metadata"] for item in inlined] == [{"key": "k0"}, {"key": "k1"}, {"key": "k2"}]
    # Each answer belongs to its own request: the upstream answered them in some order.
    asked = {b["messages"][-1]["content"]: i for i, b in enumerate(gateway.upstream.requests)}
    for item, text in zip(inlined, ("one", "two", "three"), strict=True):
        answer = item["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert answer == f"answer {asked[text]}"
    records = await gateway.records()
    assert len(records) == 3
    assert {(r.batch_id, r.status, r.dialect, r.model) for r in records} == {
        (name.removeprefix("batches/"), 200, "gemini", MODEL)}


async def test_a_failed_request_answers_its_error_and_the_rest_succeed(gateway: Gateway) -> None:
    key = await gateway.key("batcher")
    gateway.upstream.replies = [Reply(status=400, error_type="invalid_request_error")]
    created = (await gateway.http.post(CREATE, json=_batch("bad"),
                                       headers={"x-goog-api-key": key})).json()
    done = await gateway.done(created["name"], key)
    [item] = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert item["metadata"] == {"key": "k0"} and "response" not in item
    assert item["error"]["code"] == 3  # google.rpc.Code INVALID_ARGUMENT
    assert done["metadata"]["batchStats"]["failedRequestCount"] == "1"
    [record] = await gateway.records()
    assert (record.status, record.batch_id) == (400, created["name"].removeprefix("batches/"))


async def test_list_pages_the_keys_batches_newest_first(gateway: Gateway) -> None:
    key = await gateway.key("lister")
    other = await gateway.key("other")
    names = []
    for text in ("a", "b", "c"):
        created = await gateway.http.post(CREATE, json=_batch(text),
                                          headers={"x-goog-api-key": key})
        names.append(created.json()["name"])
    await gateway.http.post(CREATE, json=_batch("x"), headers={"x-goog-api-key": other})
    first = (await gateway.http.get("/v1beta/batches", params={"pageSize": 2},
                                    headers={"x-goog-api-key": key})).json()
    second = (await gateway.http.get(
        "/v1beta/batches", params={"pageSize": 2, "pageToken": first["nextPageToken"]},
        headers={"x-goog-api-key": key})).json()
    listed = [op["name"] for op in first["operations"] + second["operations"]]
    assert sorted(listed) == sorted(names) and "nextPageToken" not in second
    assert len(first["operations"]) == 2
    bad = await gateway.http.get("/v1beta/batches", params={"pageToken": "zz"},
                                 headers={"x-goog-api-key": key})
    _google_error(bad, 400, "INVALID_ARGUMENT", "The page token is not valid.")


async def test_cancel_stops_pending_requests_and_keeps_finished_ones(gateway: Gateway) -> None:
    key = await gateway.key("canceller")
    hold = asyncio.Event()
    # concurrency 2: the first two requests are held upstream, the other two wait unclaimed.
    gateway.upstream.replies = [Reply(text="first", hold=hold), Reply(text="second", hold=hold)]
    created = (await gateway.http.post(CREATE, json=_batch("a", "b", "c", "d"),
                                       headers={"x-goog-api-key": key})).json()
    name = created["name"]
    for _ in range(500):
        if len(gateway.upstream.requests) == 2:
            break
        await asyncio.sleep(0.01)
    cancelled = await gateway.http.post(f"/v1beta/{name}:cancel",
                                        headers={"x-goog-api-key": key})
    assert (cancelled.status_code, cancelled.json()) == (200, {})
    hold.set()
    await gateway.app.state.batch_runner.idle()
    done = await gateway.done(name, key)
    assert done["metadata"]["state"] == "BATCH_STATE_CANCELLED"
    inlined = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [("response" in i, i["metadata"]["key"]) for i in inlined] == [
        (True, "k0"), (True, "k1"), (False, "k2"), (False, "k3")]
    assert inlined[2]["error"] == {"code": 1,
                                   "message": "The batch was cancelled before this request ran."}
    assert len(gateway.upstream.requests) == 2  # the cancelled ones never went upstream
    again = await gateway.http.post(f"/v1beta/{name}:cancel", headers={"x-goog-api-key": key})
    assert again.status_code == 200


async def test_a_finished_batch_cannot_be_cancelled_and_delete_removes_it(
        gateway: Gateway) -> None:
    key = await gateway.key("deleter")
    name = (await gateway.http.post(CREATE, json=_batch("a"),
                                    headers={"x-goog-api-key": key})).json()["name"]
    await gateway.done(name, key)
    refused = await gateway.http.post(f"/v1beta/{name}:cancel", headers={"x-goog-api-key": key})
    _google_error(refused, 400, "INVALID_ARGUMENT",
                  f"{name} has already ended (BATCH_STATE_SUCCEEDED); only a pending or running "
                  "batch can be cancelled.")
    deleted = await gateway.http.delete(f"/v1beta/{name}", headers={"x-goog-api-key": key})
    assert (deleted.status_code, deleted.json()) == (200, {})
    gone = await gateway.http.get(f"/v1beta/{name}", headers={"x-goog-api-key": key})
    _google_error(gone, 404, "NOT_FOUND", "Requested entity was not found.")
    again = await gateway.http.delete(f"/v1beta/{name}", headers={"x-goog-api-key": key})
    _google_error(again, 404, "NOT_FOUND", "Requested entity was not found.")


async def test_another_keys_batch_is_not_found(gateway: Gateway) -> None:
    owner = await gateway.key("owner")
    stranger = await gateway.key("stranger")
    name = (await gateway.http.post(CREATE, json=_batch("a"),
                                    headers={"x-goog-api-key": owner})).json()["name"]
    for method, path in (("GET", f"/v1beta/{name}"), ("POST", f"/v1beta/{name}:cancel"),
                         ("DELETE", f"/v1beta/{name}"), ("GET", "/v1beta/batches/missing")):
        response = await gateway.http.request(method, path, headers={"x-goog-api-key": stranger})
        _google_error(response, 404, "NOT_FOUND", "Requested entity was not found.")
    listed = (await gateway.http.get("/v1beta/batches",
                                     headers={"x-goog-api-key": stranger})).json()
    assert listed == {"operations": []}
    await gateway.done(name, owner)


@pytest.mark.parametrize(("body", "message"), [
    ({}, "batch is required."),
    ({"batch": {"displayName": "x"}}, "batch.input_config is required."),
    ({"batch": {"inputConfig": {"requests": {"requests": []}}}},
     "batch.input_config.requests.requests is required."),
    ({"batch": {"inputConfig": {}}},
     "batch.input_config must set exactly one of requests or file_name."),
    ({"batch": {"inputConfig": {"requests": {"requests": [{"request": {"contents": 5}}]}}}},
     "Invalid value at 'batch.input_config.requests.requests[0].request.contents[0]' "
     "(type.googleapis.com/google.ai.generativelanguage.v1beta.Content), 5"),
    ({"batch": {"inputConfig": {"requests": {"requests": [{"request": _request("a"),
                                                           "extra": 1}]}}}},
     'Invalid JSON payload received. Unknown name "extra" at '
     "'batch.input_config.requests.requests[0]': Cannot find field."),
    ({"batch": {"displayName": "x" * 513, "inputConfig": {"requests": {"requests": [
        {"request": _request("a")}]}}}},
     "batch.display_name must be at most 512 characters."),
    ({"batch": {"displayName": 7}}, "Invalid value at 'batch.display_name' (TYPE_STRING), 7"),
    ({"batch": {"colour": "red"}},
     'Invalid JSON payload received. Unknown name "colour" at \'batch\': Cannot find field.'),
])
async def test_a_bad_batch_is_refused_in_googles_envelope(
        gateway: Gateway, body: dict[str, Any], message: str) -> None:
    key = await gateway.key("bad")
    response = await gateway.http.post(CREATE, json=body, headers={"x-goog-api-key": key})
    _google_error(response, 400, "INVALID_ARGUMENT", message)


async def test_a_batch_for_an_unknown_model_or_without_a_key_is_refused(
        gateway: Gateway) -> None:
    key = await gateway.key("unknown")
    response = await gateway.http.post("/v1beta/models/nope:batchGenerateContent",
                                       json=_batch("a"), headers={"x-goog-api-key": key})
    _google_error(response, 404, "NOT_FOUND",
                  "models/nope is not found for API version v1beta, or is not supported for "
                  "batchGenerateContent. Call ListModels to see the list of available models "
                  "and their supported methods.")
    keyless = await gateway.http.post(CREATE, json=_batch("a"))
    assert keyless.status_code == 403 and keyless.json()["error"]["status"] == "PERMISSION_DENIED"


async def test_a_batch_the_budget_cannot_cover_is_refused_whole(gateway: Gateway) -> None:
    # Each request may cost its prompt estimate and 100 output tokens: about 0.2 USD.
    worst_one = (estimate(orjson.dumps(_request("a")))[0] * INPUT_PRICE
                 + MAX_OUTPUT * OUTPUT_PRICE) / Decimal(1_000_000)
    key = await gateway.key("budgeted", budget_total_usd=worst_one * 3)
    hold = asyncio.Event()
    gateway.upstream.replies = [Reply(hold=hold), Reply(hold=hold)]
    first = await gateway.http.post(CREATE, json=_batch("a", "b"),
                                    headers={"x-goog-api-key": key})
    assert first.status_code == 200, first.text
    # Two are reserved by the first batch: a second batch of two does not fit, one does.
    refused = await gateway.http.post(CREATE, json=_batch("c", "d"),
                                      headers={"x-goog-api-key": key})
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["message"].startswith(
        "Budget exhausted: the 2 requests of this batch may cost up to "
        f"{(worst_one * 2).normalize():f} USD, more than the ")
    hold.set()
    await gateway.done(first.json()["name"], key)
    assert len([r for r in await gateway.records() if r.batch_id]) == 2


async def test_an_expired_batch_ends_with_its_unrun_requests_expired(
        build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> None:
    settings = build_settings(models=PRICED_MODELS)
    # Made by a gateway that runs no batch requests; expired on creation, so the next
    # gateway's workers expire it before they could claim any of its requests.
    created = replace(settings, batches=BatchSettings(enabled=False, expire_hours=1e-9))
    async with _opened(created, upstream) as gateway:
        key = await gateway.key("late")
        name = (await gateway.http.post(CREATE, json=_batch("a"),
                                        headers={"x-goog-api-key": key})).json()["name"]
    running = replace(settings, batches=BatchSettings(poll_seconds=0.02))
    async with _opened(running, upstream) as gateway:
        done = await gateway.done(name, key)
    assert done["metadata"]["state"] == "BATCH_STATE_EXPIRED"
    [item] = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert item["error"] == {"code": 4, "message": "The batch expired before this request ran."}
    assert upstream.requests == []


@contextlib.asynccontextmanager
async def _opened(settings: Settings, upstream: FakeOpenAIUpstream,
                  role: WorkerRole | None = None) -> AsyncIterator[Gateway]:
    gate = UpstreamGate(upstream.app)
    app = create_app(settings, providers={"fake": _gated_provider(settings, gate)}, role=role)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        yield Gateway(http, settings, app, upstream, gate)


async def test_at_most_the_providers_concurrency_runs_at_once(gateway: Gateway) -> None:
    key = await gateway.key("busy")
    gateway.gate.close()
    name = (await gateway.http.post(CREATE, json=_batch(*"abcdef"),
                                    headers={"x-goog-api-key": key})).json()["name"]
    await gateway.gate.wait_for_waiting(2)
    running = (await gateway.http.get(f"/v1beta/{name}", headers={"x-goog-api-key": key})).json()
    assert running["metadata"]["state"] == "BATCH_STATE_RUNNING"
    assert running["metadata"]["batchStats"]["pendingRequestCount"] == "6"
    gateway.gate.open()
    done = await gateway.done(name, key)
    assert done["metadata"]["batchStats"]["successfulRequestCount"] == "6"
    assert gateway.gate.most == 2  # batches.concurrency here


async def test_a_request_refused_by_a_rate_limit_waits_and_runs_later(gateway: Gateway) -> None:
    # One request at a time for this key, two workers: the second admission is refused
    # (concurrency) and given back, then runs once the first has ended.
    key = await gateway.key("one-at-a-time", max_concurrent=1)
    name = (await gateway.http.post(CREATE, json=_batch("a", "b"),
                                    headers={"x-goog-api-key": key})).json()["name"]
    done = await gateway.done(name, key)
    inlined = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert ["response" in item for item in inlined] == [True, True]
    assert len(gateway.upstream.requests) == 2
    assert [r.status for r in await gateway.records()] == [200, 200]


def _jsonl(*lines: object) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


async def _uploaded(gateway: Gateway, key: str, data: bytes) -> str:
    gateway.http.headers["x-goog-api-key"] = key
    try:
        file = await upload(gateway.http, data, "application/jsonl", "requests.jsonl")
    finally:
        del gateway.http.headers["x-goog-api-key"]
    return str(file["name"])


def _file_batch(file_name: str) -> dict[str, Any]:
    return {"batch": {"displayName": "from a file", "inputConfig": {"fileName": file_name}}}


async def test_a_batch_from_a_jsonl_file_answers_in_a_result_file(gateway: Gateway) -> None:
    key = await gateway.key("filer")
    gateway.upstream.default = Reply(echo=True)
    gateway.upstream.replies = [Reply(echo=True), Reply(status=400)]
    source = await _uploaded(gateway, key, _jsonl(
        {"key": "first", "request": _request("one")},
        {"key": "second", "request": _request("two")},
        {"key": "third", "request": _request("three")}) + b"\n")
    created = await gateway.http.post(CREATE, json=_file_batch(source),
                                      headers={"x-goog-api-key": key})
    assert created.status_code == 200, created.text
    assert created.json()["metadata"]["inputConfig"] == {"fileName": source}
    name = created.json()["name"]
    done = await gateway.done(name, key)
    assert done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    results = done["metadata"]["output"]["responsesFile"]
    assert done["response"]["responsesFile"] == results
    again = (await gateway.http.get(f"/v1beta/{name}", headers={"x-goog-api-key": key})).json()
    assert again["metadata"]["output"] == {"responsesFile": results}  # made once
    file = (await gateway.http.get(f"/v1beta/{results}", headers={"x-goog-api-key": key})).json()
    assert (file["source"], file["mimeType"]) == ("GENERATED", "application/jsonl")
    downloaded = await gateway.http.get(f"/download/v1beta/{results}:download",
                                        params={"alt": "media"},
                                        headers={"x-goog-api-key": key})
    lines = [orjson.loads(line) for line in downloaded.content.splitlines()]
    assert [line["key"] for line in lines] == ["first", "second", "third"]
    answered = {line["key"]: line for line in lines}
    failed = [k for k, line in answered.items() if "error" in line]
    assert len(failed) == 1 and answered[failed[0]]["error"]["code"] == 3
    for text, k in (("one", "first"), ("two", "second"), ("three", "third")):
        if k not in failed:
            part = answered[k]["response"]["candidates"][0]["content"]["parts"][0]
            assert part["text"] == f"You said: {text}"
    listed = (await gateway.http.get("/v1beta/files", headers={"x-goog-api-key": key})).json()
    assert sorted(f["name"] for f in listed["files"]) == sorted([source, results])
    assert len([r for r in await gateway.records() if r.batch_id]) == 3


async def test_a_file_batch_refuses_a_foreign_file_or_bad_lines(gateway: Gateway) -> None:
    owner = await gateway.key("file-owner")
    stranger = await gateway.key("file-stranger")
    source = await _uploaded(gateway, owner, _jsonl({"key": "a", "request": _request("a")}))
    foreign = await gateway.http.post(CREATE, json=_file_batch(source),
                                      headers={"x-goog-api-key": stranger})
    _google_error(foreign, 403, "PERMISSION_DENIED",
                  f"You do not have permission to access the File "
                  f"{source.removeprefix('files/')} or it may not exist.")
    for data, message in (
        (b"{not json\n", "Line 1 of {file} is not a JSON object."),
        (_jsonl({"key": "a", "request": _request("a")}, {"request": _request("b")}),
         "Line 2 of {file} must be a JSON object with a key and a request."),
        (b"\n\n", "{file} holds no requests."),
        (_jsonl({"key": "a", "request": {"contents": [], "colour": 1}}),
         'Invalid JSON payload received. Unknown name "colour" at '
         "'{file}[line 1].request': Cannot find field."),
    ):
        bad = await _uploaded(gateway, owner, data)
        refused = await gateway.http.post(CREATE, json=_file_batch(bad),
                                          headers={"x-goog-api-key": owner})
        _google_error(refused, 400, "INVALID_ARGUMENT", message.format(file=bad))
    not_a_file = await gateway.http.post(CREATE, json=_file_batch("gs://bucket/x"),
                                         headers={"x-goog-api-key": owner})
    _google_error(not_a_file, 400, "INVALID_ARGUMENT",
                  "Invalid value at 'batch.input_config.file_name' (TYPE_STRING), "
                  '"gs://bucket/x"')


async def test_a_gateway_stopping_mid_batch_gives_its_requests_back_for_the_next(
        build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> None:
    """A graceful stop cancels the requests in flight (recorded 499, cancelled) and returns
    them unanswered; the next gateway on the same database runs them and ends the batch."""
    settings = replace(build_settings(models=PRICED_MODELS),
                       batches=BatchSettings(poll_seconds=0.02, concurrency=2))
    async with _opened(settings, upstream) as gateway:
        key = await gateway.key("restarted")
        gateway.gate.close()
        name = (await gateway.http.post(CREATE, json=_batch("a", "b", "c"),
                                        headers={"x-goog-api-key": key})).json()["name"]
        await gateway.gate.wait_for_waiting(2)  # held there until the stop cancels them
        stopped = gateway
    cancelled = await stopped.records()
    assert [(r.status, r.failure_class) for r in cancelled] == [(499, "cancelled")] * 2
    async with _opened(settings, upstream) as gateway:
        done = await gateway.done(name, key)
        records = await gateway.records()
    inlined = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [("response" in item, item["metadata"]["key"]) for item in inlined] == [
        (True, "k0"), (True, "k1"), (True, "k2")]
    assert sorted(r.status for r in records if r.batch_id) == [200, 200, 200, 499, 499]


async def test_a_worker_that_does_not_claim_leaves_batches_to_the_one_that_does(
        build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> None:
    """Under `serve --workers N` one worker claims batch requests; the others take batches
    in and answer for them, and run none."""
    settings = replace(build_settings(models=PRICED_MODELS),
                       batches=BatchSettings(poll_seconds=0.02, concurrency=2))
    quiet = WorkerRole(1, sweeps=False, claims_batches=False, recovers_background=False,
                       limiter_socket=None)
    async with _opened(settings, upstream, role=quiet) as gateway:
        key = await gateway.key("workers")
        headers = {"x-goog-api-key": key}
        name = (await gateway.http.post(CREATE, json=_batch("a", "b"), headers=headers)
                ).json()["name"]
        await asyncio.sleep(0.3)  # fifteen polls of a claiming worker
        assert not (await gateway.http.get(f"/v1beta/{name}", headers=headers)).json().get("done")
        assert gateway.gate.served == 0
    async with _opened(settings, upstream) as gateway:
        done = await gateway.done(name, key)
    inlined = done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [("response" in item) for item in inlined] == [True, True]


async def test_what_a_batch_holds_is_kept_from_live_calls_of_its_key(
        build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> None:
    worst_one = (estimate(orjson.dumps(_request("a")))[0] * INPUT_PRICE
                 + MAX_OUTPUT * OUTPUT_PRICE) / Decimal(1_000_000)
    # A gateway that runs no batch requests: the batch's requests stay pending, held.
    settings = replace(build_settings(models=PRICED_MODELS),
                       batches=BatchSettings(enabled=False))
    async with _opened(settings, upstream) as gateway:
        key = await gateway.key("holder", budget_total_usd=worst_one * Decimal("2.5"))
        live = f"/v1beta/models/{MODEL}:generateContent"
        name = (await gateway.http.post(CREATE, json=_batch("a", "b"),
                                        headers={"x-goog-api-key": key})).json()["name"]
        refused = await gateway.http.post(live, json=_request("a"),
                                          headers={"x-goog-api-key": key})
        _google_error(refused, 429, "RESOURCE_EXHAUSTED",
                      "Budget exhausted: this API key's budget is spent, reserved by requests "
                      "in flight, or held by its unfinished batches "
                      f"({(worst_one * 2).normalize():f} USD).")
        await gateway.http.post(f"/v1beta/{name}:cancel", headers={"x-goog-api-key": key})
        allowed = await gateway.http.post(live, json=_request("a"),
                                          headers={"x-goog-api-key": key})
        assert allowed.status_code == 200, allowed.text
        other = await gateway.key("unbudgeted")
        free = await gateway.http.post(live, json=_request("a"),
                                       headers={"x-goog-api-key": other})
        assert free.status_code == 200


class _Starting:
    """A supervised upstream (as the local model is) that is not ready until told."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.ready = False

    async def start(self) -> None:
        """Nothing to start: readiness is set by the test."""

    def is_ready(self) -> bool:
        return self.ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_no_request_is_claimed_for_an_upstream_still_starting(
        build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> None:
    settings = replace(build_settings(models=PRICED_MODELS),
                       batches=BatchSettings(poll_seconds=60))  # the test makes the polls
    starting = _Starting(_gated_provider(settings, UpstreamGate(upstream.app)))
    app = create_app(settings, providers={"fake": cast(Provider, starting)})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
        gateway = Gateway(http, settings, app, upstream, UpstreamGate(upstream.app))
        key = await gateway.key("early")
        name = (await http.post(CREATE, json=_batch("a"),
                                headers={"x-goog-api-key": key})).json()["name"]
        runner = app.state.batch_runner
        await runner.claim_once()
        await runner.idle()
        pending = (await http.get(f"/v1beta/{name}", headers={"x-goog-api-key": key})).json()
        assert pending["metadata"]["state"] == "BATCH_STATE_PENDING"
        assert upstream.requests == []
        starting.ready = True
        await runner.claim_once()
        done = await gateway.done(name, key)
    assert done["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert len(upstream.requests) == 1


async def test_an_openai_caller_still_hears_openai_s_404_on_v1_batches(
        gateway: Gateway) -> None:
    key = await gateway.key("openai-caller")
    answer = await gateway.http.get("/v1/batches", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "Invalid URL (GET /v1/batches)"
    gemini = await gateway.http.get("/v1/batches", headers={"x-goog-api-key": key})
    assert (gemini.status_code, gemini.json()) == (200, {"operations": []})
