"""Accounting through the whole app: one usage record per request, per-key limits, budgets with
reserve-then-settle, access rules, the balance endpoint, and no secret in any log line.

The app runs in process on SQLite with in-process limits, in front of the fake OpenAI upstream
(through a gate that can hold requests in flight). Records are read back from the database the
app wrote to; each response's x-request-id names its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.dialects.gemini.estimate import estimate
from cometgate.providers.base import Provider
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.settings import OpenAIProviderSettings, Secret, Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRecord, KeyRepository
from cometgate.storage.usage import UsageQueries, UsageRecord
from cometgate.storage.usage_log import UsageLog
from tests.api.conftest import SettingsBuilder
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "priced"
UPSTREAM_MODEL = "priced-upstream"
# USD per million tokens: a prompt token costs 0.001 USD, an output token 0.002 USD.
INPUT_PRICE = Decimal("1000")
OUTPUT_PRICE = Decimal("2000")
PRICED_MODELS = {
    MODEL: {"provider": "fake", "upstream_model": UPSTREAM_MODEL, "input_token_limit": 8192,
            "output_token_limit": 1000,
            "prices": {"input": str(INPUT_PRICE), "output": str(OUTPUT_PRICE)}},
}
MAX_OUTPUT = 100
BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                        "generationConfig": {"maxOutputTokens": MAX_OUTPUT}}
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
ADMIN_KEY = "admin-" + "s3cret-" * 6
# The fake's default usage: 7 prompt tokens, 5 completion tokens.
REAL_COST = (7 * INPUT_PRICE + 5 * OUTPUT_PRICE) / Decimal(1_000_000)
PROMPT_ESTIMATE = estimate(orjson.dumps(BODY))[0]
WORST_COST = (PROMPT_ESTIMATE * INPUT_PRICE + MAX_OUTPUT * OUTPUT_PRICE) / Decimal(1_000_000)


class Gateway:
    """An app on the given settings, its gated fake upstream, and a way to make keys."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, gate: UpstreamGate,
                 upstream: FakeOpenAIUpstream, usage_log: UsageLog) -> None:
        self.settings = settings
        self.usage_log = usage_log
        self.http = http
        self.gate = gate
        self.upstream = upstream

    async def key(self, name: str = "metered", **policy: Any) -> tuple[KeyRecord, str]:
        async with await open_database(self.settings.database_url) as database:
            return await KeyRepository(database).create(name, **policy)

    async def update(self, ident: str, **changes: Any) -> None:
        async with await open_database(self.settings.database_url) as database:
            await KeyRepository(database).update(ident, **changes)

    async def records(self) -> list[UsageRecord]:
        await self.usage_log.flush()  # records are journaled at once, committed in batches
        async with await open_database(self.settings.database_url) as database:
            return await UsageQueries(database).records()

    async def generate(self, key: str, path: str = GENERATE, **kwargs: Any) -> httpx.Response:
        return await self.http.post(path, json=kwargs.pop("json", BODY),
                                    headers={"x-goog-api-key": key}, **kwargs)


OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


def _gated_provider(settings: Settings, gate: UpstreamGate) -> Provider:
    spec = settings.provider("fake")
    assert isinstance(spec, OpenAIProviderSettings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate))
    return http_provider("fake", base_url=spec.base_url, options=openai_options(spec),
                         timeouts=spec.timeouts, client=client)


@pytest.fixture
def open_gateway(build_settings: SettingsBuilder, upstream: FakeOpenAIUpstream) -> OpenGateway:
    @contextlib.asynccontextmanager
    async def opened(server: dict[str, Any] | None = None,
                     admin_key: str | None = None) -> AsyncIterator[Gateway]:
        settings = build_settings(server=server, models=PRICED_MODELS)
        if admin_key is not None:
            settings = replace(settings, admin_key=Secret(admin_key, "env:COMETGATE_ADMIN_KEY"))
        gate = UpstreamGate(upstream.app)
        app = create_app(settings, providers={"fake": _gated_provider(settings, gate)})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://gateway") as http:
                yield Gateway(settings, http, gate, upstream, app.state.usage_log)

    return opened


@pytest.fixture
async def gateway(open_gateway: OpenGateway) -> AsyncIterator[Gateway]:
    async with open_gateway() as opened:
        yield opened


async def _away_from_minute_end(margin_seconds: float = 10.0) -> None:
    """Per-minute counts reset at the minute's end; a test that counts within one minute
    starts early enough in a minute to end in it (each takes well under a second)."""
    now = datetime.now(UTC)
    left = 60 - now.second - now.microsecond / 1e6
    if left < margin_seconds:
        await asyncio.sleep(left + 0.05)


def _sse_chunks(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line[len("data: "):]) for line in text.splitlines()
            if line.startswith("data: ")]


def _usage_of(record: UsageRecord) -> dict[str, int]:
    return {"promptTokenCount": record.prompt_tokens,
            "candidatesTokenCount": record.output_tokens,
            "totalTokenCount": record.prompt_tokens + record.output_tokens
            + record.thoughts_tokens}


def _only(records: list[UsageRecord], request_id: str) -> UsageRecord:
    found = [r for r in records if r.request_id == request_id]
    assert len(found) == 1, f"{len(found)} records for request {request_id}"
    return found[0]


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


# --- one record per request --------------------------------------------------------------------


async def test_generate_content_has_one_record_with_every_field(gateway: Gateway) -> None:
    record_key, key = await gateway.key()
    response = await gateway.generate(key)
    assert response.status_code == 200, response.text
    usage = response.json()["usageMetadata"]
    [record] = await gateway.records()
    assert record.request_id == response.headers["x-request-id"]
    assert (record.key_id, record.model, record.provider, record.upstream_model) == (
        record_key.id, MODEL, "fake", UPSTREAM_MODEL)
    assert (record.dialect, record.stream, record.status, record.failure_class) == (
        "gemini", False, 200, None)
    assert _usage_of(record) == {k: usage[k] for k in _usage_of(record)}
    assert (record.prompt_tokens, record.output_tokens) == (7, 5)
    assert record.cost_usd == REAL_COST == Decimal("0.017")
    assert record.latency_ms > 0
    assert record.ttfb_ms is None  # a unary answer has no first byte before its last
    assert abs(record.created_at - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize("alt", ["sse", "json"])
async def test_a_stream_has_one_record_with_its_usage_and_first_byte(
    gateway: Gateway, alt: str
) -> None:
    _, key = await gateway.key()
    gateway.upstream.default = Reply(prompt_tokens=9, completion_tokens=4, chunks=3)
    query = "?alt=sse" if alt == "sse" else ""
    response = await gateway.generate(key, STREAM + query)
    assert response.status_code == 200, response.text
    chunks = _sse_chunks(response.text) if alt == "sse" else response.json()
    usage = [c["usageMetadata"] for c in chunks if "usageMetadata" in c][-1]
    [record] = await gateway.records()
    assert record.request_id == response.headers["x-request-id"]
    assert record.stream is True and record.status == 200 and record.failure_class is None
    assert (record.prompt_tokens, record.output_tokens) == (
        usage["promptTokenCount"], usage["candidatesTokenCount"]) == (9, 4)
    assert record.cost_usd == (9 * INPUT_PRICE + 4 * OUTPUT_PRICE) / Decimal(1_000_000)
    assert record.ttfb_ms is not None and 0 < record.ttfb_ms <= record.latency_ms


async def test_an_upstream_failure_is_recorded_with_its_status_and_failure_class(
    gateway: Gateway,
) -> None:
    _, key = await gateway.key()
    gateway.upstream.replies = [Reply(status=503, error_type="server_error")]
    response = await gateway.generate(key)
    assert response.status_code == 503, response.text
    [record] = await gateway.records()
    assert record.request_id == response.headers["x-request-id"]
    assert record.status == 503
    assert record.failure_class == "transient"
    assert (record.prompt_tokens, record.output_tokens, record.cost_usd) == (0, 0, Decimal(0))


async def test_a_mid_stream_failure_is_recorded_as_failed(gateway: Gateway) -> None:
    _, key = await gateway.key()
    gateway.upstream.replies = [Reply(fail_mid_stream=True, chunks=3)]
    response = await gateway.generate(key, STREAM + "?alt=sse")
    assert response.status_code == 200  # the first byte went out before the failure
    chunks = _sse_chunks(response.text)
    assert "error" in chunks[-1], response.text
    [record] = await gateway.records()
    assert record.request_id == response.headers["x-request-id"]
    assert record.stream is True
    assert record.status == chunks[-1]["error"]["code"] >= 500
    assert record.failure_class is not None
    assert record.ttfb_ms is not None


async def test_a_request_refused_by_a_limit_gets_no_record(gateway: Gateway) -> None:
    """A refusal happens at admission, before the pipeline: nothing was served, nothing is
    recorded (and the limiter did not count it)."""
    await _away_from_minute_end()
    _, key = await gateway.key(rpm=1)
    assert (await gateway.generate(key)).status_code == 200
    refused = await gateway.generate(key)
    assert refused.status_code == 429
    records = await gateway.records()
    assert len(records) == 1
    assert refused.headers["x-request-id"] not in {r.request_id for r in records}
    assert gateway.gate.served == 1


# --- rate limits -------------------------------------------------------------------------------


async def test_the_request_after_rpm_is_429_with_retry_after_and_retry_info(
    gateway: Gateway,
) -> None:
    await _away_from_minute_end()
    rpm = 3
    _, key = await gateway.key(rpm=rpm)
    for _ in range(rpm):
        assert (await gateway.generate(key)).status_code == 200
    refused = await gateway.generate(key)
    assert refused.status_code == 429
    error = _error(refused)
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert f"rpm={rpm}" in error["message"] and "requests per minute" in error["message"]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    [info] = [d for d in error["details"]
              if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert info["retryDelay"] == f"{retry_after}s"
    assert gateway.gate.served == rpm


async def test_successes_carry_rate_limit_headers(gateway: Gateway) -> None:
    await _away_from_minute_end()
    _, key = await gateway.key(rpm=5, tpm=1000, rpd=50)
    first = await gateway.generate(key)
    second = await gateway.generate(key)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert second.headers["x-ratelimit-remaining-requests"] == "3"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    # After settling, the minute holds the real tokens (7 + 5 per request), not the estimate.
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - 12)
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - 24)
    assert second.headers["x-ratelimit-limit-requests-day"] == "50"
    assert second.headers["x-ratelimit-remaining-requests-day"] == "48"
    datetime.fromisoformat(first.headers["x-ratelimit-reset-requests"])


async def test_a_key_without_rate_limits_gets_no_rate_limit_headers(gateway: Gateway) -> None:
    _, key = await gateway.key()
    response = await gateway.generate(key)
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("x-ratelimit-")]


async def test_tpm_counts_real_tokens_and_refuses_the_request_that_would_exceed_it(
    gateway: Gateway,
) -> None:
    await _away_from_minute_end()
    real_tokens = 12
    tpm = 3 * real_tokens + PROMPT_ESTIMATE - 1  # room for three, not for a fourth's estimate
    _, key = await gateway.key(tpm=tpm)
    for _ in range(3):
        assert (await gateway.generate(key)).status_code == 200
    refused = await gateway.generate(key)
    assert refused.status_code == 429
    assert f"tpm={tpm}" in _error(refused)["message"]
    assert "retry-after" in refused.headers
    assert gateway.gate.served == 3


async def test_max_concurrent_refuses_the_request_beyond_it_while_others_are_in_flight(
    gateway: Gateway,
) -> None:
    _, key = await gateway.key(max_concurrent=2)
    gateway.gate.close()
    held = [asyncio.create_task(gateway.generate(key)) for _ in range(2)]
    try:
        await gateway.gate.wait_for_waiting(2)
        refused = await gateway.generate(key)
        assert refused.status_code == 429
        assert "max_concurrent=2" in _error(refused)["message"]
        assert refused.headers["retry-after"] == "1"
    finally:
        gateway.gate.open()
        answers = await asyncio.gather(*held)
    assert [a.status_code for a in answers] == [200, 200]
    assert gateway.gate.most == 2
    assert (await gateway.generate(key)).status_code == 200  # the slots were given back


# --- budgets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["total", "day"])
async def test_a_reservation_refuses_what_could_overspend_and_settling_admits_more(
    gateway: Gateway, budget: str
) -> None:
    amount = WORST_COST + WORST_COST / 4  # room for one worst case, not for two
    policy: dict[str, Any] = (
        {"budget_total_usd": amount} if budget == "total"
        else {"budget_period": "day", "budget_period_usd": amount})
    _, key = await gateway.key(**policy)
    gateway.gate.close()
    first = asyncio.create_task(gateway.generate(key))
    try:
        await gateway.gate.wait_for_waiting(1)
        refused = await gateway.generate(key)  # nothing spent yet; one worst case reserved
    finally:
        gateway.gate.open()
    assert (await first).status_code == 200
    assert refused.status_code == 429, refused.text
    error = _error(refused)
    assert error["status"] == "RESOURCE_EXHAUSTED" and "Budget exhausted" in error["message"]
    if budget == "total":
        assert "retry-after" not in refused.headers  # a total budget never renews
    else:
        assert "daily budget" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    # Settled at the real cost, the budget admits requests while spent + worst case fits.
    spent = REAL_COST
    admitted = 1
    while spent + WORST_COST <= amount:
        assert (await gateway.generate(key)).status_code == 200
        spent += REAL_COST
        admitted += 1
    assert admitted > 2, "the real cost is far below the worst case"
    assert (await gateway.generate(key)).status_code == 429
    records = await gateway.records()
    assert len(records) == admitted
    assert sum(r.cost_usd for r in records) == spent <= amount


# --- access rules ------------------------------------------------------------------------------


async def test_an_expired_key_is_400_with_googles_message(gateway: Gateway) -> None:
    record, key = await gateway.key(expires_at=datetime.now(UTC) + timedelta(days=1))
    await gateway.update(str(record.id), expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await gateway.generate(key)
    assert response.status_code == 400
    assert _error(response)["message"] == "API key expired. Please renew the API key."
    assert _error(response)["status"] == "INVALID_ARGUMENT"
    assert gateway.gate.served == 0
    assert await gateway.records() == []


async def test_a_model_outside_the_allow_list_is_403(gateway: Gateway) -> None:
    _, key = await gateway.key(allowed_models=["budget-*", "level-thinker"])
    refused = await gateway.generate(key)
    assert refused.status_code == 403
    assert _error(refused)["status"] == "PERMISSION_DENIED"
    assert f"models/{MODEL}" in _error(refused)["message"]
    assert gateway.gate.served == 0
    _, allowed = await gateway.key("allowed", allowed_models=["pri*"])
    assert (await gateway.generate(allowed)).status_code == 200


async def test_a_client_address_outside_the_allowed_ranges_is_403(gateway: Gateway) -> None:
    _, key = await gateway.key(allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    refused = await gateway.generate(key)  # ASGITransport's client is 127.0.0.1
    assert refused.status_code == 403
    assert "127.0.0.1" in _error(refused)["message"]
    assert gateway.gate.served == 0
    _, inside = await gateway.key("inside", allowed_ips=["10.0.0.0/8", "127.0.0.0/8"])
    assert (await gateway.generate(inside)).status_code == 200


async def test_the_admin_key_is_refused_on_model_routes_and_a_user_key_on_admin(
    open_gateway: OpenGateway,
) -> None:
    async with open_gateway(admin_key=ADMIN_KEY) as gateway:
        by_header = await gateway.generate(ADMIN_KEY)
        by_bearer = await gateway.http.post(GENERATE, json=BODY,
                                            headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert by_header.status_code == by_bearer.status_code == 400
        assert _error(by_bearer)["message"] == "API key not valid. Please pass a valid API key."
        assert gateway.gate.served == 0
        _, key = await gateway.key()
        on_admin = await gateway.http.get("/admin/keys",
                                          headers={"authorization": f"Bearer {key}"})
        assert on_admin.status_code == 403
        assert ADMIN_KEY not in on_admin.text and key not in on_admin.text
        listed = await gateway.http.get("/admin/keys",
                                        headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert listed.status_code == 200


# --- what the caller and the operator see of the records ---------------------------------------


async def test_balance_and_admin_usage_match_the_records(open_gateway: OpenGateway) -> None:
    async with open_gateway(admin_key=ADMIN_KEY) as gateway:
        record_key, key = await gateway.key(budget_total_usd=Decimal(10), rpm=100)
        gateway.upstream.replies = [Reply(status=503, error_type="server_error")]
        assert (await gateway.generate(key)).status_code == 503
        assert (await gateway.generate(key)).status_code == 200
        assert (await gateway.generate(key, STREAM + "?alt=sse")).status_code == 200
        records = await gateway.records()
        assert len(records) == 3
        balance = await gateway.http.get("/v1beta/balance", headers={"x-goog-api-key": key})
        assert balance.status_code == 200, balance.text
        body = balance.json()
        spent = sum((r.cost_usd for r in records), Decimal(0))
        assert Decimal(body["budget"]["spent_total_usd"]) == spent == 2 * REAL_COST
        assert Decimal(body["budget"]["remaining_total_usd"]) == Decimal(10) - spent
        total = body["usage"]["total"]
        assert total["requests"] == len(records)
        assert total["prompt_tokens"] == sum(r.prompt_tokens for r in records)
        assert total["output_tokens"] == sum(r.output_tokens for r in records)
        assert body["usage"]["today"] == total
        assert body["rate"]["in_flight"] == 0
        assert body["rate"]["reserved_usd"] == "0"  # plain decimal text, never "0E-9"
        usage = await gateway.http.get(
            "/admin/usage", params={"key_id": str(record_key.id)},
            headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert usage.status_code == 200, usage.text
        [totals] = usage.json()["totals"]
        assert totals["requests"] == 3
        assert Decimal(totals["cost_usd"]) == spent
        # One rendering: the operator's totals and the caller's read the same, money included.
        assert totals == {"key_id": record_key.id, **total}


async def test_with_accounting_off_nothing_is_recorded_or_limited(
    open_gateway: OpenGateway,
) -> None:
    await _away_from_minute_end()
    async with open_gateway(server={"accounting": False}) as gateway:
        _, key = await gateway.key(rpm=1, budget_total_usd=WORST_COST / 2)
        for path in (GENERATE, GENERATE, STREAM + "?alt=sse"):
            assert (await gateway.generate(key, path)).status_code == 200
        assert await gateway.records() == []
        _, narrow = await gateway.key("narrow", allowed_ips=["10.0.0.0/8"])
        assert (await gateway.generate(narrow)).status_code == 403  # access rules still apply


async def test_keys_and_their_digests_never_reach_a_log(
    open_gateway: OpenGateway, caplog: pytest.LogCaptureFixture
) -> None:
    # Ours at every level; other libraries at INFO, the level `cometgate serve` runs at
    # (aiosqlite's DEBUG lines echo SQL parameters, the stored digest among them).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cometgate")
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with open_gateway(admin_key=ADMIN_KEY) as gateway:
        created = await gateway.http.post("/admin/keys", json={"name": "logged", "rpm": 1},
                                          headers=admin)
        assert created.status_code == 201, created.text
        first = created.json()["key"]
        rotated = await gateway.http.post(f"/admin/keys/{created.json()['id']}/rotate",
                                          headers=admin)
        second = rotated.json()["key"]
        await gateway.generate(first)  # the old secret: refused
        await gateway.generate(second)
        await gateway.generate(second)  # over rpm: refused
        await gateway.http.post(GENERATE, json=BODY, params={"key": second})
        await gateway.http.get("/v1beta/balance", headers={"authorization": f"Bearer {second}"})
        await gateway.http.get("/admin/keys", headers={"authorization": f"Bearer {second}"})
        await gateway.generate(ADMIN_KEY)
    # The test's own client logs the URLs it calls (one with ?key=); that is not the gateway.
    lines = [r.getMessage() for r in caplog.records
             if not (r.name == "httpx" and "http://gateway" in r.getMessage())]
    assert any(r.name == "cometgate.access" for r in caplog.records)
    text = "\n".join(lines)
    for secret in (first, second, ADMIN_KEY):
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
