"""The console's pages through the app: keys (every policy field, rotate, revoke, delete),
usage (chart, totals, CSV, the query in the URL), requests (filters, keyset paging), models,
and the playground's temporary key."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cometgate.providers.base import Provider
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.console_client import Console, console_settings, opened_console
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "smollm2-135m-instruct"


@pytest.fixture
async def console(tmp_path: Path, fake_provider: Provider) -> AsyncIterator[Console]:
    async with opened_console(console_settings(tmp_path), fake_provider) as opened:
        await opened.sign_in()
        yield opened


async def chat(console: Console, key: str, model: str = MODEL) -> httpx.Response:
    return await console.http.post(
        "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


async def key_count(tmp_path: Path) -> int:
    async with await open_database(console_settings(tmp_path).database_url) as database:
        return await KeyRepository(database).count(include_revoked=True)


async def record_of(tmp_path: Path, key_id: int) -> dict[str, object]:
    async with await open_database(console_settings(tmp_path).database_url) as database:
        record = await KeyRepository(database).find(str(key_id))
    return record.as_document(datetime.now(UTC))


async def test_a_key_is_created_with_every_policy_field_and_shown_once(
        console: Console, tmp_path: Path) -> None:
    key_id, key = await console.create_key(
        "full", owner="team-a", expires_at="2099-01-02T03:04", translation="strict",
        allowed_models=f"{MODEL}\nbudget-*", allowed_ips="10.0.0.0/8, 127.0.0.1/32",
        rpm="60", tpm="100000", rpd="1000", max_concurrent="4", budget_total_usd="12.50",
        budget_period="month", budget_period_usd="5", allowed_passthrough="web_search",
        metadata='{"team": "search"}', store_conversations="on")
    document = await record_of(tmp_path, key_id)
    assert document | {"created_at": None, "updated_at": None} == {
        "id": key_id, "name": "full", "prefix": key[:11], "status": "active",
        "created_at": None, "updated_at": None, "revoked_at": None,
        "expires_at": datetime(2099, 1, 2, 3, 4, tzinfo=UTC), "translation": "strict",
        "owner": "team-a", "metadata": {"team": "search"},
        "allowed_models": [MODEL, "budget-*"],
        "allowed_ips": ["10.0.0.0/8", "127.0.0.1/32"], "rpm": 60, "tpm": 100000, "rpd": 1000,
        "max_concurrent": 4, "budget_total_usd": "12.5", "budget_period": "month",
        "budget_period_usd": "5", "allowed_passthrough": ["web_search"],
        "store_conversations": True}
    page = (await console.http.get(f"/console/keys/{key_id}")).text
    assert key not in page and key[:11] in page
    for shown in ("team-a", "10.0.0.0/8\n127.0.0.1/32", 'value="2099-01-02T03:04"',
                  '<option value="strict" selected>', '<option value="month" selected>',
                  "{&#34;team&#34;:&#34;search&#34;}"):
        assert shown in page, shown


async def test_a_key_with_no_conversations_stored_is_created_unchecked(
        console: Console, tmp_path: Path) -> None:
    key_id, _ = await console.create_key("quiet")
    assert (await record_of(tmp_path, key_id))["store_conversations"] is False


@pytest.mark.parametrize("fields,message", [
    ({"rpm": "many"}, "rpm must be a whole number, not &#39;many&#39;"),
    ({"rpm": "0"}, "rpm"),
    ({"allowed_models": "no-such-model"}, "no-such-model"),
    ({"budget_period": "month"}, "budget_period"),
    ({"metadata": "[1"}, "metadata must be a JSON object"),
    ({"metadata": "[1]"}, "metadata must be a JSON object, not list"),
    ({"expires_at": "soon"}, "expires_at must be a date and time, not &#39;soon&#39;"),
    ({"expires_at": "2001-01-01T00:00"}, "expires_at is in the past"),
    ({"allowed_ips": "not-an-ip"}, "not-an-ip"),
    ({"budget_total_usd": "lots"}, "budget_total_usd must be a decimal amount of USD"),
    ({"name": "123"}, "must not be all digits"),
    ({"name": ""}, "name is required"),
])
async def test_a_refused_key_form_says_why_and_keeps_what_was_typed(
        console: Console, tmp_path: Path, fields: dict[str, str], message: str) -> None:
    response = await console.post("/console/keys", {"name": "bad", "owner": "kept"} | fields)
    assert response.status_code == 400
    assert message in response.text
    assert 'value="kept"' in response.text
    assert await key_count(tmp_path) == 0


async def test_a_second_active_key_of_one_name_is_refused(console: Console) -> None:
    await console.create_key("twin")
    response = await console.post("/console/keys", {"name": "twin"})
    assert response.status_code == 400
    assert "an active API key named &#39;twin&#39; already exists" in response.text


async def test_editing_changes_and_clears_fields(console: Console, tmp_path: Path) -> None:
    key_id, _ = await console.create_key("edit-me", owner="old", rpm="10",
                                         store_conversations="on")
    response = await console.post(f"/console/keys/{key_id}", {
        "name": "edited", "owner": "", "rpm": "20", "tpm": "500", "translation": "lenient"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/console/keys/{key_id}?saved=1"
    document = await record_of(tmp_path, key_id)
    assert (document["name"], document["owner"], document["rpm"], document["tpm"],
            document["translation"], document["store_conversations"]) == (
        "edited", None, 20, 500, "lenient", False)
    assert "Saved." in (await console.http.get(response.headers["location"])).text


async def test_a_refused_edit_changes_nothing(console: Console, tmp_path: Path) -> None:
    key_id, _ = await console.create_key("stable", rpm="10")
    response = await console.post(f"/console/keys/{key_id}", {
        "name": "stable", "rpm": "10", "budget_period": "day"})
    assert response.status_code == 400 and "budget_period" in response.text
    assert (await record_of(tmp_path, key_id))["budget_period"] is None


async def test_rotate_revoke_and_delete(console: Console, tmp_path: Path) -> None:
    key_id, key = await console.create_key("cycle")
    assert (await chat(console, key)).status_code == 200
    rotated = await console.post(f"/console/keys/{key_id}/rotate")
    assert rotated.status_code == 200 and "rotated" in rotated.text
    found = re.search(r'<code id="new-key">([^<]+)</code>', rotated.text)
    assert found
    new_key = found.group(1)
    assert (await chat(console, key)).status_code == 401
    assert (await chat(console, new_key)).status_code == 200

    revoked = await console.post(f"/console/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert (await record_of(tmp_path, key_id))["status"] == "revoked"
    refused = await chat(console, new_key)
    assert refused.status_code == 401
    page = (await console.http.get(f"/console/keys/{key_id}")).text
    assert 'id="key-status">revoked<' in page and 'id="revoke"' not in page
    again = await console.post(f"/console/keys/{key_id}/rotate")
    assert again.status_code == 400 and "is revoked; create a new key instead" in again.text

    deleted = await console.post(f"/console/keys/{key_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/console/keys"
    assert (await console.http.get(f"/console/keys/{key_id}")).status_code == 404
    assert (await console.post(f"/console/keys/{key_id}/revoke")).status_code == 404


async def test_the_key_list_searches_name_prefix_owner_and_id(console: Console) -> None:
    _first, key = await console.create_key("alpha", owner="search-team")
    await console.create_key("beta")
    for query, expected in (("ALP", ["alpha"]), ("search-t", ["alpha"]), (key[:11], ["alpha"]),
                            ("", ["alpha", "beta"]), ("nothing", [])):
        page = (await console.http.get("/console/keys", params={"q": query})).text
        names = re.findall(r'<a href="/console/keys/\d+">([^<]+)</a>', page)
        assert names == expected, query
    assert "No keys match “nothing”." in (
        await console.http.get("/console/keys", params={"q": "nothing"})).text


async def test_usage_chart_totals_and_csv_follow_the_calls(console: Console) -> None:
    empty = await console.http.get("/console/usage", params={"metric": "requests"})
    assert 'data-total="0"' in empty.text and "No usage in this period." in empty.text
    first_id, first = await console.create_key("one")
    _second_id, second = await console.create_key("two")
    for key in (first, first, second):
        assert (await chat(console, key)).status_code == 200
    page = await console.http.get("/console/usage",
                                  params={"metric": "requests", "group_by": "key",
                                          "period": "24h"})
    assert 'data-total="3"' in page.text and 'data-metric="requests"' in page.text
    assert len(re.findall(r'<rect class="bar"', page.text)) == 2  # one bucket, two keys
    assert re.search(rf'<a href="/console/keys/{first_id}">{first_id}</a></td>\s*<td>2</td>',
                     page.text)
    assert '<option selected>24h</option>' in page.text
    link = re.search(r'href="/console/usage.csv\?([^"]+)"', page.text)
    assert link and "group_by=key" in link.group(1) and "period=24h" in link.group(1)

    export = await console.http.get("/console/usage.csv",
                                    params={"group_by": "key", "key_id": str(first_id)})
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == (
        'attachment; filename="usage-7d-by-key.csv"')
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["group"], r["requests"], r["errors"]) for r in rows] == [(str(first_id), "2", "0")]
    assert export.text.endswith("\r\n") and Decimal(rows[0]["cost_usd"]) >= 0
    start = datetime.fromisoformat(rows[0]["bucket_start"])
    assert start == datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("query,message", [
    ("period=1y", "period must be one of 24h, 7d, 30d, 90d, not &#39;1y&#39;."),
    ("group_by=day", "group_by must be one of model, key, provider."),
    ("metric=joy", "metric must be one of cost, tokens, requests, errors."),
    ("key_id=abc", "key_id must be a key&#39;s numeric id, not &#39;abc&#39;."),
    ("colour=red", "Unknown query parameter &#39;colour&#39;."),
])
async def test_usage_refuses_a_query_it_cannot_answer(
        console: Console, query: str, message: str) -> None:
    for path in ("/console/usage", "/console/usage.csv"):
        response = await console.http.get(f"{path}?{query}")
        assert response.status_code == 400 and message in response.text


async def test_requests_are_listed_newest_first_and_paged_by_id(
        console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cometgate.console.requests_page.PAGE_SIZE", 2)
    key_id, key = await console.create_key("pager")
    for _ in range(3):
        assert (await chat(console, key)).status_code == 200
    first = (await console.http.get("/console/requests")).text
    ids = re.findall(r'data-request-id="([0-9a-f]+)"', first)
    assert len(ids) == 2
    older = re.search(r'href="/console/requests\?before=(\d+)" id="older"', first)
    assert older
    second = (await console.http.get(f"/console/requests?before={older.group(1)}")).text
    rest = re.findall(r'data-request-id="([0-9a-f]+)"', second)
    assert len(rest) == 1 and rest[0] not in ids and 'id="older"' not in second
    assert f'<a href="/console/keys/{key_id}">{key_id}</a>' in second
    for column in (MODEL, "fake", "openai", "200", " ms"):
        assert column in second


async def test_requests_filter_by_key_model_provider_and_status(console: Console) -> None:
    first_id, first = await console.create_key("f1")
    _, second = await console.create_key("f2")
    assert (await chat(console, first)).status_code == 200
    assert (await chat(console, second)).status_code == 200
    rows = r'data-request-id="'
    by_key = (await console.http.get(f"/console/requests?key_id={first_id}")).text
    assert by_key.count(rows) == 1
    assert (await console.http.get("/console/requests?status=error")).text.count(rows) == 0
    assert (await console.http.get("/console/requests?status=ok")).text.count(rows) == 2
    assert (await console.http.get("/console/requests?provider=fake")).text.count(rows) == 2
    assert (await console.http.get("/console/requests?model=other")).text.count(rows) == 0
    bad = await console.http.get("/console/requests?status=bad")
    assert bad.status_code == 400 and "status must be ok or error." in bad.text


async def test_the_models_page_shows_each_alias_and_its_candidates(console: Console) -> None:
    _, key = await console.create_key("models")
    assert (await chat(console, key)).status_code == 200
    page = (await console.http.get("/console/models")).text
    for model in (MODEL, "budget-thinker", "level-thinker"):
        assert f'id="model-{model}"' in page
    assert '<span class="circuit closed">closed</span>' in page
    section = page.split(f'id="model-{MODEL}"')[1].split("</section>")[0]
    assert "1 recent requests, 0.0% errors" in section
    assert "<td>fake</td><td>openai</td>" in section


async def test_the_playground_makes_a_temporary_key_that_works_and_expires(
        console: Console, tmp_path: Path) -> None:
    page = (await console.http.get("/console/playground")).text
    assert f"<option>{MODEL}</option>" in page and 'data-csrf="' in page
    response = await console.http.post("/console/playground/key",
                                       headers={"x-csrf-token": console.csrf})
    assert response.status_code == 201
    made = response.json()
    assert made["name"].startswith("playground-") and made["prefix"] == made["key"][:11]
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert (await chat(console, made["key"])).status_code == 200
    document = await record_of(tmp_path, made["id"])
    assert document["expires_at"] == expires


async def test_requests_show_failures_and_what_translation_dropped(
        console: Console, upstream: FakeOpenAIUpstream) -> None:
    _, key = await console.create_key("gemini-caller")
    upstream.replies = [Reply(status=400, error_type="invalid_request_error")]
    generate = f"/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "labels": {"t": "a"}}
    failed = await console.http.post(generate, json=body, headers={"x-goog-api-key": key})
    assert failed.status_code == 400
    answered = await console.http.post(generate, json=body, headers={"x-goog-api-key": key})
    assert answered.headers["x-cometgate-dropped"] == "labels"
    page = (await console.http.get("/console/requests")).text
    rows = page.split('<tr class="request-row')[1:]
    assert len(rows) == 2
    newest, oldest = rows
    assert "<td>gemini</td>" in newest and "<td>labels</td>" in newest
    assert '<span class="status ok">200</span>' in newest
    assert oldest.startswith(' failed"')
    assert '<span class="status error">400</span>' in oldest
    assert "<td>caller_fault</td>" in oldest
    errors = (await console.http.get("/console/requests?status=error")).text
    assert errors.count('<tr class="request-row') == 1
    usage = (await console.http.get("/console/usage?metric=errors&period=24h")).text
    assert 'data-total="1"' in usage


async def test_the_key_page_shows_its_use_today_and_this_month(console: Console) -> None:
    key_id, key = await console.create_key("spender", budget_period="month",
                                           budget_period_usd="3")
    _, other = await console.create_key("other")
    for used in (key, key, other):
        assert (await chat(console, used)).status_code == 200
    page = (await console.http.get(f"/console/keys/{key_id}")).text
    spend = page.split('id="key-spend"')[1].split("</section>")[0]
    today = re.search(r"<td>Today</td><td>(\d+)</td><td>(\d+)</td>", spend)
    month = re.search(r"<td>This month</td><td>(\d+)</td><td>(\d+)</td>", spend)
    assert today and month
    assert today.group(1) == month.group(1) == "2"
    assert int(today.group(2)) > 0 and "$3 a month" in spend
