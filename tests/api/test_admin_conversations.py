"""The operator's /admin/conversations: list stored turns without their content, purge them by
key, API, age, id or all, with the admin API's access rules and error envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from cometgate.api.admin_routes import admin_routes
from cometgate.api.error_handlers import gateway_error, http_error, unexpected_error
from cometgate.errors import GatewayError
from cometgate.settings import load_settings
from cometgate.storage.conversations import ConversationStore, NewTurn
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.usage import UsageQueries

ADMIN = "admin-secret-0123456789"
START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Opened:
    http: httpx.AsyncClient
    store: ConversationStore
    clock: list[datetime]


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opened]:
    settings = load_settings(None, data_dir=tmp_path / "data",
                             env={"HOME": str(tmp_path), "COMETGATE_ADMIN_KEY": ADMIN})
    database = await open_database(settings.database_url)
    clock = [START]
    store = ConversationStore(database, retention=timedelta(days=30), clock=lambda: clock[0])
    app = Starlette(
        routes=admin_routes(settings, KeyRepository(database), UsageQueries(database), [],
                            store),
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error,
                            Exception: unexpected_error},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"authorization": f"Bearer {ADMIN}"}) as http:
        yield Opened(http, store, clock)
    await database.aclose()


async def _put(opened: Opened, turn_id: str, key_id: int, days: int = 0) -> None:
    opened.clock[0] = START + timedelta(days=days)
    await opened.store.put(NewTurn(
        id=turn_id, api="responses", key_id=key_id, model="gpt-fake", status="completed",
        body={"id": turn_id, "output": [{"type": "message", "content": "private words"}]},
        items=[{"id": f"{turn_id}_in", "type": "message", "content": "private prompt"}]))


async def test_a_listing_identifies_turns_and_never_shows_content(opened: Opened) -> None:
    await _put(opened, "resp_1", key_id=1)
    await _put(opened, "resp_2", key_id=2, days=1)
    response = await opened.http.get("/admin/conversations")
    assert response.status_code == 200
    assert "private" not in response.text
    document = response.json()
    assert document["storage"] == "on"
    assert document["turns"][0] == {
        "id": "resp_2", "api": "responses", "key_id": 2, "model": "gpt-fake",
        "status": "completed", "previous_id": None, "created_at": "2030-01-02T00:00:00Z",
        "expires_at": "2030-02-01T00:00:00Z"}
    only = (await opened.http.get("/admin/conversations", params={"key_id": 1})).json()
    assert [t["id"] for t in only["turns"]] == ["resp_1"]
    page = (await opened.http.get("/admin/conversations",
                                  params={"limit": 1, "after": "resp_2"})).json()
    assert [t["id"] for t in page["turns"]] == ["resp_1"]


async def test_purges_by_filter_by_id_and_everything(opened: Opened) -> None:
    for n, (key_id, days) in enumerate([(1, 0), (2, 1), (1, 2), (2, 3)]):
        await _put(opened, f"resp_{n}", key_id, days)
    purged = await opened.http.delete("/admin/conversations", params={"key_id": 2})
    assert purged.json() == {"purged": 2}
    purged = await opened.http.delete("/admin/conversations",
                                      params={"created_before": "2030-01-02"})
    assert purged.json() == {"purged": 1}
    assert (await opened.http.delete("/admin/conversations/resp_2")).json() == {"purged": 1}
    assert (await opened.http.delete("/admin/conversations/resp_2")).json() == {"purged": 0}
    await _put(opened, "resp_9", 3)
    assert (await opened.http.delete("/admin/conversations",
                                     params={"all": "true"})).json() == {"purged": 1}
    assert await opened.store.count() == 0


@pytest.mark.parametrize(("method", "params", "field"), [
    ("DELETE", {}, "all"),
    ("DELETE", {"all": "yes"}, "all"),
    ("DELETE", {"key_id": "one"}, "key_id"),
    ("DELETE", {"created_before": "soon"}, "created_before"),
    ("GET", {"limit": "0"}, "limit"),
    ("GET", {"colour": "red"}, "colour"),
])
async def test_bad_queries_are_400s_naming_the_field(
    opened: Opened, method: str, params: dict[str, str], field: str
) -> None:
    await _put(opened, "resp_1", 1)
    response = await opened.http.request(method, "/admin/conversations", params=params)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]
    assert await opened.store.count() == 1


async def test_user_keys_and_no_key_are_refused(opened: Opened) -> None:
    response = await opened.http.get("/admin/conversations", headers={"authorization": ""})
    assert response.status_code == 401
    response = await opened.http.delete("/admin/conversations/resp_1",
                                        headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401


async def test_with_storage_off_there_is_nothing_to_list_or_purge(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data",
                             env={"HOME": str(tmp_path), "COMETGATE_ADMIN_KEY": ADMIN})
    async with await open_database(settings.database_url) as database:
        app = Starlette(routes=admin_routes(settings, KeyRepository(database),
                                            UsageQueries(database), [], None))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw",
                                     headers={"authorization": f"Bearer {ADMIN}"}) as http:
            assert (await http.get("/admin/conversations")).json() == {
                "turns": [], "storage": "off"}
            assert (await http.delete("/admin/conversations",
                                      params={"all": "true"})).json() == {"purged": 0}
