"""API keys: where clients put them, Google's answers when they are missing or wrong, revocation,
and keys never written to the access log."""

from __future__ import annotations

import logging

import httpx
import pytest

from cometgate.storage.database import open_database
from cometgate.storage.keys import KeyRepository
from tests.api.bodies import GENERATE, error_of, text_body
from tests.api.conftest import ClientOpener, SettingsBuilder, create_key
from tests.fakes.openai_upstream import FakeOpenAIUpstream

NO_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


@pytest.mark.parametrize("method, path", [("POST", GENERATE), ("GET", "/v1beta/models"),
                                          ("GET", "/v1/models/smollm2-135m-instruct")])
async def test_missing_key_is_permission_denied(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, method: str, path: str
) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.request(method, path, json=text_body())
    assert response.status_code == 403
    assert error_of(response.content) == {
        "code": 403, "message": NO_KEY_MESSAGE, "status": "PERMISSION_DENIED"
    }
    assert upstream.requests == []


@pytest.mark.parametrize("bad_key", ["cg-" + "A" * 43, "AIzaSyNotOurs", "x"])
async def test_invalid_key_is_api_key_invalid(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, bad_key: str
) -> None:
    response = await client.post(GENERATE, json=text_body(),
                                 headers={"x-goog-api-key": bad_key})
    assert response.status_code == 400
    error = error_of(response.content)
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["status"] == "INVALID_ARGUMENT"
    info = next(d for d in error["details"]
                if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
    assert info["reason"] == "API_KEY_INVALID"
    assert info["metadata"] == {"service": "generativelanguage.googleapis.com"}
    assert upstream.requests == []


async def test_key_in_query_string(client: httpx.AsyncClient, api_key: str) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.post(GENERATE, params={"key": api_key}, json=text_body())
    assert response.status_code == 200


async def test_key_as_bearer_token(client: httpx.AsyncClient, api_key: str) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.post(GENERATE, json=text_body(),
                                 headers={"authorization": f"Bearer {api_key}"})
    assert response.status_code == 200


async def test_key_with_surrounding_whitespace(client: httpx.AsyncClient, api_key: str) -> None:
    response = await client.post(GENERATE, json=text_body(),
                                 headers={"x-goog-api-key": f" {api_key} "})
    assert response.status_code == 200


async def test_non_bearer_authorization_is_not_a_key(client: httpx.AsyncClient,
                                                     api_key: str) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.post(GENERATE, json=text_body(),
                                 headers={"authorization": f"Basic {api_key}"})
    assert response.status_code == 403


async def test_header_key_wins_over_query_key(client: httpx.AsyncClient) -> None:
    # x-goog-api-key holds the good key; a wrong ?key= must not displace it.
    response = await client.post(GENERATE, params={"key": "cg-wrong"}, json=text_body())
    assert response.status_code == 200


async def test_revoked_key_is_refused(
    build_settings: SettingsBuilder, open_client: ClientOpener, upstream: FakeOpenAIUpstream
) -> None:
    settings = build_settings(server={"auth_cache_seconds": 0})
    key = await create_key(settings, "soon-revoked")
    async with open_client(settings) as http:
        before = await http.post(GENERATE, json=text_body(), headers={"x-goog-api-key": key})
        database = await open_database(settings.database_url)
        try:
            await KeyRepository(database).revoke("soon-revoked")
        finally:
            await database.aclose()
        after = await http.post(GENERATE, json=text_body(), headers={"x-goog-api-key": key})
    assert before.status_code == 200
    assert after.status_code == 400
    assert error_of(after.content)["details"][0]["reason"] == "API_KEY_INVALID"
    assert len(upstream.requests) == 1


async def test_key_never_reaches_the_access_log(
    client: httpx.AsyncClient, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    del client.headers["x-goog-api-key"]
    with caplog.at_level(logging.DEBUG):
        ok = await client.post(GENERATE, params={"key": api_key}, json=text_body())
        bad = await client.post(GENERATE, params={"key": api_key + "x"}, json=text_body())
        missing = await client.get("/v1beta/nothing", params={"key": api_key})
    assert (ok.status_code, bad.status_code, missing.status_code) == (200, 400, 404)
    access = [r for r in caplog.records if r.name == "cometgate.access"]
    assert len(access) == 3
    assert any(GENERATE in r.getMessage() for r in access)
    # The test's own client (httpx) logs the URL it sent; only the gateway's loggers count.
    ours = [r for r in caplog.records if r.name.startswith("cometgate")]
    for record in ours:
        assert api_key[3:20] not in record.getMessage()
        assert api_key[3:20] not in repr(record.args)
