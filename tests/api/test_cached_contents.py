"""cachedContents through the whole app, on every upstream kind (the three fakes over real
sockets): the resource's routes and Google's answers to bad input, and generations naming a
cache, with each provider's own cache markers seen upstream and what the upstream served
from its cache reported in `cachedContentTokenCount`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import update

from cometgate.app import create_app
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.schema import cached_contents
from cometgate.storage.usage import UsageQueries
from tests.api.upstream_fakes import KINDS, SECRETS, UPSTREAM
from tests.contract.conftest import (
    Fakes,
    model_block,
    new_key,
    provider_block,
    running_fakes,
    settings_for,
)

SYSTEM = "You answer questions about the attached handbook in one short sentence."
HANDBOOK = ("The handbook says the north gate opens at seven and closes at nine, the river "
            "path is closed in winter, and visitors sign in at the lodge.")
PREFIX_WORDS = len(SYSTEM.split()) + len(HANDBOOK.split())
NOT_FOUND = {"error": {"code": 403, "message": "CachedContent not found (or permission denied)",
                       "status": "PERMISSION_DENIED"}}


class Caller:
    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http, self.key = http, key

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        content = None if body is None else orjson.dumps(body)
        return await self.http.request(method, path, content=content,
                                       headers={"x-goog-api-key": self.key})

    async def create(self, model: str, **extra: Any) -> dict[str, Any]:
        answer = await self.call("POST", "/v1beta/cachedContents", cache_body(model, **extra))
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def generate(self, model: str, cache: str, question: str = "When does it open?",
                       **extra: Any) -> httpx.Response:
        body = {"contents": [{"role": "user", "parts": [{"text": question}]}],
                "cachedContent": cache, **extra}
        return await self.call("POST", f"/v1beta/models/{model}:generateContent", body)


def cache_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"models/{model}", "displayName": "handbook",
            "systemInstruction": {"parts": [{"text": SYSTEM}]},
            "contents": [{"role": "user", "parts": [{"text": HANDBOOK}]}],
            "ttl": "300s", **extra}


class Running:
    def __init__(self, caller: Caller, other: Caller, fakes: Fakes, database_url: str,
                 app: Any) -> None:
        self.caller, self.other, self.fakes = caller, other, fakes
        self.database_url, self.app = database_url, app

    async def expire(self, name: str) -> None:
        """Moves a cache's expiry into the past, as time would."""
        async with await open_database(self.database_url) as database:
            async with database.engine.begin() as conn:
                await conn.execute(update(cached_contents)
                                   .where(cached_contents.c.id == name.split("/")[1])
                                   .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def config(fakes: Fakes) -> dict[str, Any]:
    providers = {kind: provider_block(kind, fakes.urls[kind], [f"{kind.upper()}_KEY"])
                 for kind in KINDS}
    providers["openai"]["tokenize_endpoint"] = True
    models = {f"{kind}-alias": model_block([(kind, UPSTREAM[kind])]) for kind in KINDS}
    models["openai-alias"]["prices"] = {"input": 1000, "cached_input": 100, "output": 2000}
    models["gemini-alias"]["prices"] = {"input": 1, "output": 1, "cache_storage_per_hour": 3600}
    models["gemini-big"] = model_block([("gemini", UPSTREAM["gemini"])], cache_min_tokens=1024)
    return {"routing": {"retries": 0}, "providers": providers, "models": models}


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_fakes() as fakes:
        settings = settings_for(tmp_path, config(fakes), SECRETS)
        key, other_key = await new_key(settings), await new_key_named(settings, "other")
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30.0,
        ) as http:
            yield Running(Caller(http, key), Caller(http, other_key), fakes,
                          settings.database_url, app)


async def new_key_named(settings: Any, name: str) -> str:
    async with await open_database(settings.database_url) as database:
        _, key = await KeyRepository(database).create(name)
    return key


# --- the resource -------------------------------------------------------------------------------


async def test_create_get_list_update_delete_as_google_answers_them(running: Running) -> None:
    caller = running.caller
    created = await caller.create("openai-alias")
    assert set(created) == {"name", "displayName", "model", "createTime", "updateTime",
                            "expireTime", "usageMetadata"}  # never the contents
    assert created["name"].startswith("cachedContents/")
    assert created["model"] == "models/openai-alias"
    assert created["displayName"] == "handbook"
    # The upstream's own count (the OpenAI fake's /tokenize: one token per word).
    assert created["usageMetadata"] == {"totalTokenCount": PREFIX_WORDS}
    made = datetime.fromisoformat(created["createTime"])
    assert datetime.fromisoformat(created["expireTime"]) - made == timedelta(seconds=300)

    got = await caller.call("GET", f"/v1beta/{created['name']}")
    assert got.status_code == 200 and got.json() == created

    patched = await caller.call("PATCH", f"/v1beta/{created['name']}", {"ttl": "7200s"})
    assert patched.status_code == 200, patched.text
    renewed = patched.json()
    assert datetime.fromisoformat(renewed["expireTime"]) - datetime.fromisoformat(
        renewed["updateTime"]) == timedelta(hours=2)
    assert renewed["createTime"] == created["createTime"]
    at = "2099-01-02T03:04:05Z"
    masked = await caller.call("PATCH", f"/v1beta/{created['name']}?updateMask=expireTime",
                               {"expireTime": at})
    assert masked.json()["expireTime"] == at

    assert (await caller.call("DELETE", f"/v1beta/{created['name']}")).json() == {}
    gone = await caller.call("GET", f"/v1beta/{created['name']}")
    assert (gone.status_code, gone.json()) == (403, NOT_FOUND)


async def test_list_pages_the_keys_own_caches(running: Running) -> None:
    names = [(await running.caller.create("openai-alias"))["name"] for _ in range(3)]
    await running.other.create("openai-alias")  # another key's: never listed
    first = (await running.caller.call("GET", "/v1beta/cachedContents?pageSize=2")).json()
    assert [c["name"] for c in first["cachedContents"]] == names[:2]
    token = first["nextPageToken"]
    rest = (await running.caller.call(
        "GET", f"/v1beta/cachedContents?pageSize=2&pageToken={token}")).json()
    assert [c["name"] for c in rest["cachedContents"]] == names[2:]
    assert "nextPageToken" not in rest
    empty = await running.other.http.get("/v1beta/cachedContents",
                                         headers={"x-goog-api-key": "AIza-not-a-key"})
    assert empty.status_code == 400  # a bad key is refused as Google refuses it


@pytest.mark.parametrize("kind", KINDS)
async def test_the_size_is_the_models_own_count(running: Running, kind: str) -> None:
    created = await running.caller.create(f"{kind}-alias")
    assert created["usageMetadata"]["totalTokenCount"] == PREFIX_WORDS


async def test_a_cache_below_the_models_minimum_is_refused(running: Running) -> None:
    answer = await running.caller.call("POST", "/v1beta/cachedContents", cache_body("gemini-big"))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        f"Cached content is too small. total_token_count={PREFIX_WORDS}, "
        "min_total_token_count=1024")
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


BAD_CREATES = [
    ({"ttl": "soon"}, 400,
     "Invalid value at 'ttl' (type.googleapis.com/google.protobuf.Duration), \"soon\""),
    ({"ttl": "-5s"}, 400, "ttl must be positive."),
    ({"ttl": None, "expireTime": "tomorrow"}, 400,
     "Invalid value at 'expire_time' (type.googleapis.com/google.protobuf.Timestamp), "
     "\"tomorrow\""),
    ({"ttl": None, "expireTime": "2001-01-01T00:00:00Z"}, 400,
     "expire_time must be in the future."),
    ({"model": "models/no-such-model"}, 404,
     "models/no-such-model is not found for API version v1beta, or is not supported for "
     "createCachedContent. Call ListModels to see the list of available models and their "
     "supported methods."),
    ({"model": None}, 400, "Model name must be specified."),
    ({"contentz": []}, 400,
     'Invalid JSON payload received. Unknown name "contentz": Cannot find field.'),
]


@pytest.mark.parametrize(("change", "status", "message"), BAD_CREATES)
async def test_bad_creates_hear_googles_errors(
    running: Running, change: dict[str, Any], status: int, message: str
) -> None:
    body = {k: v for k, v in {**cache_body("openai-alias"), **change}.items() if v is not None}
    answer = await running.caller.call("POST", "/v1beta/cachedContents", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"] == message


@pytest.mark.parametrize(("query", "body"), [
    ("", {"displayName": "renamed"}),
    ("?updateMask=displayName", {"displayName": "renamed"}),
    ("?updateMask=ttl,contents", {"ttl": "60s"}),
])
async def test_an_update_may_change_only_the_expiry(
    running: Running, query: str, body: dict[str, Any]
) -> None:
    name = (await running.caller.create("openai-alias"))["name"]
    answer = await running.caller.call("PATCH", f"/v1beta/{name}{query}", body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("CachedContent update can only change ttl or "
                                       "expire_time")


async def test_missing_foreign_and_expired_caches_are_one_answer(running: Running) -> None:
    mine = (await running.caller.create("openai-alias"))["name"]
    for method, body in (("GET", None), ("PATCH", {"ttl": "60s"}), ("DELETE", None)):
        for who, name in ((running.caller, "cachedContents/nosuchcache"), (running.other, mine)):
            answer = await who.call(method, f"/v1beta/{name}", body)
            assert (answer.status_code, answer.json()) == (403, NOT_FOUND), (method, name)
        foreign = await running.other.generate("openai-alias", mine)
        assert (foreign.status_code, foreign.json()) == (403, NOT_FOUND)
    await running.expire(mine)
    for answer in (await running.caller.call("GET", f"/v1beta/{mine}"),
                   await running.caller.generate("openai-alias", mine)):
        assert (answer.status_code, answer.json()) == (403, NOT_FOUND)
    listed = (await running.caller.call("GET", "/v1beta/cachedContents")).json()
    assert listed == {}


# --- generations naming a cache ---------------------------------------------------------------


async def test_a_cache_is_bound_to_its_model(running: Running) -> None:
    name = (await running.caller.create("openai-alias"))["name"]
    answer = await running.caller.generate("anthropic-alias", name)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Model used by GenerateContent request (models/anthropic-alias) and CachedContent "
        "(models/openai-alias) has to be the same!")


@pytest.mark.parametrize("own", [
    {"systemInstruction": {"parts": [{"text": "be brief"}]}},
    {"tools": [{"functionDeclarations": [{"name": "f"}]}]},
    {"tool_config": {"functionCallingConfig": {"mode": "AUTO"}}},
])
async def test_a_request_with_its_own_prefix_fields_is_refused(
    running: Running, own: dict[str, Any]
) -> None:
    name = (await running.caller.create("openai-alias"))["name"]
    answer = await running.caller.generate("openai-alias", name, **own)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "CachedContent can not be used with GenerateContent request setting "
        "system_instruction, tools or tool_config.\n\nProposed fix: move those values to "
        "CachedContent from GenerateContent request.")


async def test_openai_upstreams_get_a_prompt_cache_key_and_the_prefix_first(
    running: Running,
) -> None:
    name = (await running.caller.create("openai-alias"))["name"]
    first = await running.caller.generate("openai-alias", name)
    assert first.status_code == 200, first.text
    assert "cachedContentTokenCount" not in first.json()["usageMetadata"]  # nothing served yet
    second = await running.caller.generate("openai-alias", name, "When does it close?")
    sent = running.fakes.openai.requests[-1]
    cache_id = name.split("/")[1]
    assert sent["prompt_cache_key"] == f"cometgate-cache-{cache_id}"
    assert [m["content"] for m in sent["messages"]] == [SYSTEM, HANDBOOK, "When does it close?"]
    usage = second.json()["usageMetadata"]
    assert usage["cachedContentTokenCount"] == PREFIX_WORDS  # what the upstream reported
    async with await open_database(running.database_url) as database:
        await running.app.state.usage_log.flush()
        record = (await UsageQueries(database).records())[-1]
    assert record.cached_tokens == PREFIX_WORDS
    cached, rest = Decimal(PREFIX_WORDS), Decimal(7 - PREFIX_WORDS)
    # The OpenAI fake reports 7 prompt tokens; the cached ones cost the cached price.
    expected = (min(cached, Decimal(7)) * Decimal("0.0001") + max(rest, Decimal(0))
                * Decimal("0.001") + 5 * Decimal("0.002"))
    assert record.cost_usd == expected


async def test_anthropic_upstreams_get_cache_breakpoints_on_the_prefix(running: Running) -> None:
    name = (await running.caller.create("anthropic-alias"))["name"]
    first = await running.caller.generate("anthropic-alias", name)
    assert first.status_code == 200, first.text
    sent = running.fakes.anthropic.requests[-1]
    assert sent["system"] == [{"type": "text", "text": SYSTEM,
                               "cache_control": {"type": "ephemeral"}}]
    blocks = sent["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": HANDBOOK, "cache_control": {"type": "ephemeral"}}
    assert "cache_control" not in blocks[1]  # the caller's own question is not cached
    assert "cachedContentTokenCount" not in first.json()["usageMetadata"]  # written, not read
    second = await running.caller.call(
        "POST", "/v1beta/models/anthropic-alias:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "Who signs in?"}]}],
         "cachedContent": name})
    events = [orjson.loads(line[6:]) for line in second.text.splitlines()
              if line.startswith("data: ")]
    assert events[-1]["usageMetadata"]["cachedContentTokenCount"] == PREFIX_WORDS


async def test_gemini_upstreams_keep_a_copy_named_by_later_requests(running: Running) -> None:
    gemini = running.fakes.gemini
    name = (await running.caller.create("gemini-alias"))["name"]
    for question in ("When does it open?", "When does it close?"):
        answer = await running.caller.generate("gemini-alias", name, question)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usageMetadata"]["cachedContentTokenCount"] == PREFIX_WORDS
    creates = [seen for seen in gemini.requests if seen.path == "/v1beta/cachedContents"]
    assert len(creates) == 1  # created upstream once, then remembered
    upstream_cache = orjson.loads(creates[0].body)
    assert upstream_cache["model"] == "models/gemini-up"
    assert upstream_cache["contents"][0]["parts"][0]["text"] == HANDBOOK
    generated = [orjson.loads(seen.body) for seen in gemini.requests if ":generate" in seen.path]
    assert [g["cachedContent"] for g in generated] == ["cachedContents/fake1"] * 2
    assert generated[1]["contents"] == [{"role": "user",
                                         "parts": [{"text": "When does it close?"}]}]
    # Its expiry follows the gateway's; it goes when the cache goes.
    await running.caller.call("PATCH", f"/v1beta/{name}", {"ttl": "3600s"})
    assert gemini.requests[-1].method == "PATCH"
    assert gemini.requests[-1].path == "/v1beta/cachedContents/fake1"
    assert "expireTime" in orjson.loads(gemini.requests[-1].body)
    assert gemini.requests[-1].headers["x-goog-api-key"] == "gm-gateway"
    await running.caller.call("DELETE", f"/v1beta/{name}")
    assert gemini.requests[-1].method == "DELETE"
    assert gemini.caches == {}


async def test_a_gemini_upstream_that_will_not_keep_it_gets_the_prefix(running: Running) -> None:
    running.fakes.gemini.min_cache_tokens = 4096  # Google's minimum for some models
    name = (await running.caller.create("gemini-alias"))["name"]
    answer = await running.caller.generate("gemini-alias", name)
    assert answer.status_code == 200, answer.text
    sent = orjson.loads(running.fakes.gemini.requests[-1].body)
    assert "cachedContent" not in sent
    assert sent["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert [c["parts"][0]["text"] for c in sent["contents"]] == [HANDBOOK, "When does it open?"]
    assert "cachedContentTokenCount" not in answer.json()["usageMetadata"]


@pytest.mark.parametrize("kind", KINDS)
async def test_count_tokens_counts_the_prefix_too(running: Running, kind: str) -> None:
    name = (await running.caller.create(f"{kind}-alias"))["name"]
    body = {"generateContentRequest": {
        "model": f"models/{kind}-alias", "cachedContent": name,
        "contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}}
    answer = await running.caller.call("POST", f"/v1beta/models/{kind}-alias:countTokens", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalTokens"] == PREFIX_WORDS + 3


async def test_the_sweep_removes_expired_caches_and_their_upstream_copies(
    running: Running,
) -> None:
    gemini = running.fakes.gemini
    expiring = (await running.caller.create("gemini-alias"))["name"]
    lasting = (await running.caller.create("gemini-alias"))["name"]
    for name in (expiring, lasting):
        assert (await running.caller.generate("gemini-alias", name)).status_code == 200
    assert set(gemini.caches) == {"cachedContents/fake1", "cachedContents/fake2"}
    await running.expire(expiring)
    assert await running.app.state.caches.sweep_once() == 1
    assert set(gemini.caches) == {"cachedContents/fake2"}  # the expired one's copy went
    assert gemini.requests[-1].method == "DELETE"
    assert (await running.caller.call("GET", f"/v1beta/{lasting}")).status_code == 200


async def test_keeping_a_cache_is_charged_by_the_hour_where_the_model_prices_it(
    running: Running,
) -> None:
    created = await running.caller.create("gemini-alias")  # ttl 300 s
    renewed = (await running.caller.call("PATCH", f"/v1beta/{created['name']}",
                                         {"ttl": "900s"})).json()
    added = (datetime.fromisoformat(renewed["expireTime"])
             - datetime.fromisoformat(created["expireTime"]))
    await running.caller.create("openai-alias")  # a model without a storage price: no record
    await running.app.state.usage_log.flush()
    async with await open_database(running.database_url) as database:
        records = await UsageQueries(database).records()
    storage = [r for r in records if r.provider == "cachedContents"]
    # 3600 USD per million tokens per hour: a token-second costs a millionth of a dollar.
    assert [(r.model, r.prompt_tokens, r.cost_usd) for r in storage] == [
        ("gemini-alias", 0, Decimal(PREFIX_WORDS * 300) / 1_000_000),
        ("gemini-alias", 0, (Decimal(PREFIX_WORDS) * Decimal(added.total_seconds())
                             / 1_000_000).quantize(Decimal("1e-9")))]


async def test_a_budget_that_cannot_pay_for_the_storage_refuses_the_cache(
    running: Running,
) -> None:
    async with await open_database(running.database_url) as database:
        _, key = await KeyRepository(database).create("poor", budget_total_usd=Decimal("0.001"))
    poor = Caller(running.caller.http, key)
    answer = await poor.call("POST", "/v1beta/cachedContents", cache_body("gemini-alias"))
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert (await poor.call("GET", "/v1beta/cachedContents")).json() == {}


async def test_the_cached_prefix_counts_in_the_admission_estimate(running: Running) -> None:
    async with await open_database(running.database_url) as database:
        _, key = await KeyRepository(database).create("small", tpm=40)
    small = Caller(running.caller.http, key)
    name = (await small.create("openai-alias"))["name"]  # creating one is not a generation
    plain = await small.call("POST", "/v1beta/models/openai-alias:generateContent", {
        "contents": [{"role": "user", "parts": [{"text": "When does it open?"}]}]})
    assert plain.status_code == 200, plain.text
    # Its prefix alone (31 tokens) is more than the key's tokens per minute.
    cached = await small.generate("openai-alias", name)
    assert cached.status_code == 429, cached.text
    assert cached.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"ttl": "soon"}, "ttl",
     "Invalid value at 'ttl' (type.googleapis.com/google.protobuf.Duration), \"soon\""),
    ({"expireTime": "2001-01-01T00:00:00Z"}, "expire_time", "expire_time must be in the future."),
])
async def test_a_bad_new_expiry_is_refused_and_changes_nothing(
    running: Running, body: dict[str, Any], field: str, message: str
) -> None:
    created = await running.caller.create("openai-alias")
    answer = await running.caller.call("PATCH", f"/v1beta/{created['name']}", body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["message"], error["status"]) == (400, message,
                                                                  "INVALID_ARGUMENT")
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["details"][0]["fieldViolations"][0]["field"] == field
    assert (await running.caller.call("GET", f"/v1beta/{created['name']}")).json() == created


async def test_a_gateway_file_beside_a_cache_reaches_the_gemini_upstream_as_its_copy(
    running: Running,
) -> None:
    http, key = running.caller.http, running.caller.key
    data = b"%PDF-1.4 a small document"
    started = await http.post("/upload/v1beta/files", json={"file": {"displayName": "doc"}},
                              headers={"x-goog-api-key": key,
                                       "X-Goog-Upload-Protocol": "resumable",
                                       "X-Goog-Upload-Command": "start",
                                       "X-Goog-Upload-Header-Content-Length": str(len(data)),
                                       "X-Goog-Upload-Header-Content-Type": "application/pdf"})
    done = await http.post(started.headers["x-goog-upload-url"], content=data, headers={
        "x-goog-api-key": key, "X-Goog-Upload-Command": "upload, finalize",
        "X-Goog-Upload-Offset": "0"})
    file = done.json()["file"]
    name = (await running.caller.create("gemini-alias"))["name"]
    answer = await running.caller.call("POST", "/v1beta/models/gemini-alias:generateContent", {
        "cachedContent": name,
        "contents": [{"role": "user", "parts": [
            {"text": "And this?"}, {"fileData": {"fileUri": file["uri"],
                                                 "mimeType": "application/pdf"}}]}]})
    assert answer.status_code == 200, answer.text
    sent = orjson.loads(running.fakes.gemini.requests[-1].body)
    assert sent["cachedContent"] == "cachedContents/fake1"
    [own] = sent["contents"]  # the prefix is the upstream's copy, not in the body
    assert own["parts"][1]["fileData"]["fileUri"].endswith("/v1beta/files/up1")
