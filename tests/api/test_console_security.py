"""The console's locks: sessions, user keys refused, CSRF on every state change, security
headers on every response, and no key or key digest in anything it serves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from cometgate.console.guard import CONTENT_SECURITY_POLICY, SecurityHeaders
from cometgate.providers.base import Provider
from cometgate.storage.keys import key_digest
from tests.api.console_client import (
    ADMIN_KEY,
    Console,
    console_settings,
    csrf_of,
    opened_console,
)

MODEL = "smollm2-135m-instruct"
# The two routes that must answer before a session exists; everything else is guarded.
OPEN_PATHS = {"/signin", "/"}


@pytest.fixture
async def console(tmp_path: Path, fake_provider: Provider) -> AsyncIterator[Console]:
    async with opened_console(console_settings(tmp_path), fake_provider) as opened:
        yield opened


def guarded_paths(console: Console) -> list[str]:
    """Every route of the console's router but the open ones, {key_id} filled in."""
    mount = next(r for r in console.app.routes
                 if isinstance(r, Mount) and r.path == "/console")
    assert isinstance(mount.app, SecurityHeaders)
    router = mount.app.app
    paths = [r.path for r in router.routes  # type: ignore[attr-defined]
             if isinstance(r, Route) and r.path not in OPEN_PATHS]
    assert len(paths) >= 12, paths  # the table is not empty by accident
    return ["/console" + path.replace("{key_id:int}", "1") for path in paths]


async def test_without_an_admin_key_there_is_no_console(
        tmp_path: Path, fake_provider: Provider) -> None:
    async with opened_console(console_settings(tmp_path, admin_key=None), fake_provider) as c:
        unknown = await c.http.get("/no-such-path")
        for path in ("/console", "/console/signin", "/console/keys", "/console/static/x.css"):
            response = await c.http.get(path)
            assert response.status_code == unknown.status_code == 404
            assert response.json()["error"]["message"] == unknown.json()["error"][
                "message"].replace("/no-such-path", path)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_every_route_refuses_a_request_without_a_session(
        console: Console, method: str) -> None:
    for path in guarded_paths(console):
        response = await console.http.request(method, path)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["message"] == "Sign in to the console first."
        assert response.headers["hx-redirect"] == "/console/signin"


async def test_a_browser_reading_a_page_without_a_session_is_sent_to_sign_in(
        console: Console) -> None:
    for path in guarded_paths(console):
        response = await console.http.get(path + "?x=1", headers={"accept": "text/html"})
        assert response.status_code == 303, path
        location = response.headers["location"]
        assert location.startswith("/console/signin?next=" + path.replace("/", "%2F")
                                   ) or location.startswith("/console/signin?next=" + path)


@pytest.mark.parametrize("header", ["authorization", "x-goog-api-key", "x-api-key"])
async def test_keys_in_headers_are_refused_user_keys_and_the_admin_key_alike(
        console: Console, api_key: str, header: str) -> None:
    for presented in (api_key, ADMIN_KEY):
        value = f"Bearer {presented}" if header == "authorization" else presented
        for path in guarded_paths(console):
            for method in ("GET", "POST"):
                response = await console.http.request(method, path, headers={header: value})
                assert response.status_code == 403, (path, response.text)
                assert response.json()["error"]["message"] == (
                    "The console does not accept API keys or the admin key in a header; "
                    "sign in at /console/signin.")


async def test_sign_in_refuses_a_user_key_and_a_wrong_key_and_opens_no_session(
        console: Console, api_key: str) -> None:
    user = await console.http.post("/console/signin", data={"admin_key": api_key})
    assert user.status_code == 403
    assert ("This is an API key for model calls; the console needs the admin key "
            "(COMETGATE_ADMIN_KEY).") in user.text
    wrong = await console.http.post("/console/signin", data={"admin_key": ADMIN_KEY + "x"})
    assert wrong.status_code == 401 and "The admin key is not valid." in wrong.text
    empty = await console.http.post("/console/signin", data={})
    assert empty.status_code == 401 and "Type the admin key." in empty.text
    for response in (user, wrong, empty):
        assert "set-cookie" not in response.headers
    assert (await console.http.get("/console/keys")).status_code == 401


async def test_sign_in_from_another_origin_is_refused(console: Console) -> None:
    response = await console.http.post("/console/signin", data={"admin_key": ADMIN_KEY},
                                       headers={"origin": "http://evil.example"})
    assert response.status_code == 403 and "set-cookie" not in response.headers


async def test_the_session_cookie_is_httponly_strict_and_short_lived(console: Console) -> None:
    response = await console.http.post("/console/signin", data={"admin_key": ADMIN_KEY})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/keys"
    cookie = response.headers["set-cookie"]
    assert re.match(r"cometgate_console=[A-Za-z0-9_-]{43};", cookie)
    for part in ("HttpOnly", "Max-Age=1800", "Path=/console", "SameSite=strict"):
        assert part in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS, below


async def test_over_tls_the_cookie_is_secure(tmp_path: Path, fake_provider: Provider) -> None:
    async with opened_console(console_settings(tmp_path), fake_provider) as c:
        c.http.base_url = httpx.URL("https://gateway")
        response = await c.http.post("/console/signin", data={"admin_key": ADMIN_KEY})
        assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("target,expected", [
    ("/console/usage?period=24h", "/console/usage?period=24h"),
    ("https://evil.example/console/", "/console/keys"),
    ("//evil.example/console/", "/console/keys"),
    ("/console/\\evil", "/console/keys"),
    ("/elsewhere", "/console/keys"),
])
async def test_sign_in_returns_only_to_a_console_page(
        console: Console, target: str, expected: str) -> None:
    response = await console.http.post("/console/signin",
                                       data={"admin_key": ADMIN_KEY, "next": target})
    assert response.headers["location"] == expected


async def test_signing_out_ends_the_session(console: Console) -> None:
    await console.sign_in()
    cookie = console.http.cookies["cometgate_console"]
    response = await console.post("/console/signout")
    assert response.status_code == 303 and response.headers["location"] == "/console/signin"
    console.http.cookies.set("cometgate_console", cookie, path="/console")
    assert (await console.http.get("/console/keys")).status_code == 401


async def test_every_state_change_needs_the_csrf_token(console: Console) -> None:
    await console.sign_in()
    key_id, key = await console.create_key("target")
    refused = 0
    for path in guarded_paths(console):
        path = path.replace("/keys/1", f"/keys/{key_id}")
        for data, headers in (({}, {}), ({"csrf_token": "wrong"}, {}),
                              ({}, {"x-csrf-token": "wrong"}),
                              ({"csrf_token": console.csrf},
                               {"origin": "http://evil.example"})):
            response = await console.http.post(path, data=data | {"name": "changed"},
                                               headers=headers)
            if response.status_code == 405:
                continue  # a read-only page: nothing to forge
            assert response.status_code == 403, (path, data, headers, response.text)
            refused += 1
            assert response.json()["error"]["message"] == (
                "The request's CSRF token is missing or wrong; reload the page and try again.")
    assert refused == 4 * 7  # signout, create, edit, rotate, revoke, delete, temporary key
    # Nothing happened: the key is still active, named as before, with its secret.
    page = await console.http.get(f"/console/keys/{key_id}")
    assert 'id="key-status">active<' in page.text and "target" in page.text
    chat = await console.http.post("/v1/chat/completions",
                                   headers={"authorization": f"Bearer {key}"},
                                   json={"model": MODEL, "messages": [
                                       {"role": "user", "content": "hi"}]})
    assert chat.status_code == 200
    assert (await console.http.get("/console/keys")).status_code == 200  # still signed in


async def test_the_csrf_header_is_accepted_in_place_of_the_form_field(
        console: Console) -> None:
    await console.sign_in()
    response = await console.http.post("/console/playground/key",
                                       headers={"x-csrf-token": console.csrf})
    assert response.status_code == 201


async def test_security_headers_are_on_every_console_response(console: Console) -> None:
    responses = [
        await console.http.get("/console"),
        await console.http.get("/console/signin"),
        await console.http.put("/console/signin"),
        await console.http.get("/console/keys"),  # refused
        await console.http.get("/console/static/console.css"),
        await console.http.get("/console/no-such-page"),
    ]
    await console.sign_in()
    responses += [await console.http.get(p.replace("/keys/1", "/keys/999"))
                  for p in guarded_paths(console)]
    responses.append(await console.http.patch("/console/keys"))
    for response in responses:
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, response.url
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"


async def test_pages_hold_no_inline_script_or_style(console: Console) -> None:
    await console.sign_in()
    await console.create_key("styled")
    for path in ("/console/signin", "/console/keys", "/console/keys/1", "/console/usage",
                 "/console/requests", "/console/models", "/console/playground"):
        html = (await console.http.get(path)).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html and " on" + "click=" not in html


async def test_no_page_shows_a_key_or_its_digest_after_the_one_time_display(
        console: Console) -> None:
    await console.sign_in()
    key_id, key = await console.create_key("secretive", owner="ops")
    rotated = await console.post(f"/console/keys/{key_id}/rotate")
    new_key = re.search(r'<code id="new-key">([^<]+)</code>', rotated.text)
    assert new_key
    chat = await console.http.post("/v1/chat/completions",
                                   headers={"authorization": f"Bearer {new_key.group(1)}"},
                                   json={"model": MODEL, "messages": [
                                       {"role": "user", "content": "hi"}]})
    assert chat.status_code == 200
    secrets = [key, new_key.group(1)]
    forbidden = [*secrets, *(key_digest(k) for k in secrets), *(k[11:] for k in secrets)]
    for path in ("/console/keys", f"/console/keys/{key_id}", "/console/keys?q=secretive",
                 "/console/usage?group_by=key", "/console/usage.csv?group_by=key",
                 "/console/requests", f"/console/requests?key_id={key_id}",
                 "/console/models", "/console/playground"):
        response = await console.http.get(path)
        assert response.status_code == 200, path
        for text in forbidden:
            assert text not in response.text, path
    assert csrf_of((await console.http.get("/console/keys")).text) == console.csrf


async def test_guessing_the_admin_key_is_slowed_per_address(console: Console) -> None:
    for _ in range(10):
        wrong = await console.http.post("/console/signin", data={"admin_key": "guess"})
        assert wrong.status_code == 401
    held = await console.http.post("/console/signin", data={"admin_key": ADMIN_KEY})
    assert held.status_code == 429 and "set-cookie" not in held.headers
    assert "Too many failed sign-ins from this address; try again in 300 s." in held.text
    assert held.headers["retry-after"] == "300"
