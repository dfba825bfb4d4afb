"""What a key may see besides calls: an expired key reads neither models nor its balance, and a
key limited to some models sees only those, in every dialect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cometgate.settings import Settings
from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.conftest import ClientOpener

EXPIRED = "API key expired. Please renew the API key."
ALLOWED = "budget-thinker"
OTHER = "smollm2-135m-instruct"


def gemini(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


def openai(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def anthropic(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01"}


async def _key(settings: Settings, name: str = "visible", **policy: Any) -> tuple[int, str]:
    database = await open_database(settings.database_url)
    try:
        record, key = await KeyRepository(database).create(name, **policy)
    finally:
        await database.aclose()
    return record.id, key


async def _expire(settings: Settings, key_id: int) -> None:
    database = await open_database(settings.database_url)
    try:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await KeyRepository(database).update(str(key_id), expires_at=past)
    finally:
        await database.aclose()


@pytest.fixture
async def expired_key(settings: Settings) -> str:
    key_id, key = await _key(settings, expires_at=datetime.now(UTC) + timedelta(days=1))
    await _expire(settings, key_id)
    return key


@pytest.mark.parametrize("path", ["/v1beta/models", f"/v1beta/models/{OTHER}", "/v1beta/balance"])
async def test_an_expired_key_reads_nothing_gemini(
    settings: Settings, open_client: ClientOpener, expired_key: str, path: str,
) -> None:
    async with open_client(settings) as http:
        response = await http.get(path, headers=gemini(expired_key))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["message"], error["status"]) == (EXPIRED, "INVALID_ARGUMENT")
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize("path", ["/v1/models", f"/v1/models/{OTHER}"])
async def test_an_expired_key_reads_nothing_openai(
    settings: Settings, open_client: ClientOpener, expired_key: str, path: str,
) -> None:
    async with open_client(settings) as http:
        response = await http.get(path, headers=openai(expired_key))
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Incorrect API key provided.",
                                         "type": "invalid_request_error", "param": None,
                                         "code": "invalid_api_key"}}


@pytest.mark.parametrize("path", ["/v1/models", f"/v1/models/{OTHER}"])
async def test_an_expired_key_reads_nothing_anthropic(
    settings: Settings, open_client: ClientOpener, expired_key: str, path: str,
) -> None:
    async with open_client(settings) as http:
        response = await http.get(path, headers=anthropic(expired_key))
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


async def test_a_limited_key_lists_only_its_models_in_every_dialect(
    settings: Settings, open_client: ClientOpener,
) -> None:
    _, key = await _key(settings, allowed_models=(ALLOWED,))
    async with open_client(settings) as http:
        listed_gemini = (await http.get("/v1beta/models", headers=gemini(key))).json()
        listed_openai = (await http.get("/v1/models", headers=openai(key))).json()
        listed_anthropic = (await http.get("/v1/models", headers=anthropic(key))).json()
        unlimited_key = (await _key(settings, "unlimited"))[1]
        everything = (await http.get("/v1/models", headers=openai(unlimited_key))).json()
    assert [m["name"] for m in listed_gemini["models"]] == [f"models/{ALLOWED}"]
    assert [m["id"] for m in listed_openai["data"]] == [ALLOWED]
    assert [m["id"] for m in listed_anthropic["data"]] == [ALLOWED]
    assert len(everything["data"]) == 3


async def test_a_limited_key_does_not_find_another_model(
    settings: Settings, open_client: ClientOpener,
) -> None:
    _, key = await _key(settings, allowed_models=(ALLOWED,))
    async with open_client(settings) as http:
        own = await http.get(f"/v1beta/models/{ALLOWED}", headers=gemini(key))
        as_gemini = await http.get(f"/v1beta/models/{OTHER}", headers=gemini(key))
        as_openai = await http.get(f"/v1/models/{OTHER}", headers=openai(key))
        as_anthropic = await http.get(f"/v1/models/{OTHER}", headers=anthropic(key))
    assert own.status_code == 200
    assert as_gemini.status_code == 404
    assert as_gemini.json() == {"error": {"code": 404, "status": "NOT_FOUND",
                                          "message": f"models/{OTHER} is not found."}}
    assert as_openai.status_code == 404
    assert as_openai.json()["error"]["code"] == "model_not_found"
    assert as_anthropic.status_code == 404
    assert as_anthropic.json()["error"] == {"type": "not_found_error",
                                            "message": f"model: {OTHER}"}
