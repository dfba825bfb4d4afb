"""The admin API end to end: a Starlette app with the admin routes, the gateway's error handlers
and its request-context layer (access log included), on a real SQLite database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from cometgate.api.admin_routes import admin_routes
from cometgate.api.admin_schema import ADMIN_PATHS
from cometgate.api.error_handlers import gateway_error, http_error, unexpected_error
from cometgate.api.middleware import RequestContextMiddleware
from cometgate.errors import GatewayError
from cometgate.metrics import Metrics
from cometgate.settings import Settings, load_settings
from cometgate.storage.database import Database, open_database
from cometgate.storage.keys import KeyRepository
from cometgate.storage.schema import usage_records
from cometgate.storage.usage import UsageQueries, UsageRecord
from tests.conftest import FAKE_MODELS_YAML

ADMIN = "admin-secret-0123456789"
MODELS = ("smollm2-135m-instruct", "budget-thinker", "level-thinker")


@dataclass
class Admin:
    http: httpx.AsyncClient
    keys: KeyRepository
    database: Database
    app: Starlette

    async def create(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/admin/keys", json={"name": "k", **body})
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        return document


def _settings(tmp_path: Path, admin_key: str | None) -> Settings:
    config = tmp_path / "cometgate.yaml"
    config.write_text(FAKE_MODELS_YAML, encoding="utf-8")
    env = {"HOME": str(tmp_path)} | ({"COMETGATE_ADMIN_KEY": admin_key} if admin_key else {})
    return load_settings(config, data_dir=tmp_path / "data", env=env)


async def _opened(settings: Settings) -> tuple[Starlette, Database, KeyRepository]:
    database = await open_database(settings.database_url)
    keys = KeyRepository(database)
    app = Starlette(
        routes=admin_routes(settings, keys, UsageQueries(database), MODELS),
        middleware=[Middleware(RequestContextMiddleware, metrics=Metrics(), log_requests=True)],
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error,
                            Exception: unexpected_error},
    )
    return app, database, keys


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    app, database, keys = await _opened(_settings(tmp_path, ADMIN))
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as h:
        yield Admin(h, keys, database, app)
    await database.aclose()


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and isinstance(error["status"], str)
    message: str = error["message"]
    return message


# --- access ----------------------------------------------------------------------------------


async def test_without_an_admin_key_every_admin_route_is_absent(tmp_path: Path) -> None:
    app, database, _ = await _opened(_settings(tmp_path, None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"authorization": "Bearer anything"}) as http:
        for method, path in [("GET", "/admin/keys"), ("POST", "/admin/keys"),
                             ("PUT", "/admin/keys/1"), ("GET", "/admin/openapi.json"),
                             ("GET", "/admin/nothing-here")]:
            response = await http.request(method, path)
            assert "Method not found" in _error(response, 404)
    await database.aclose()


async def test_no_credentials_is_401(admin: Admin) -> None:
    response = await admin.http.get("/admin/keys", headers={"authorization": ""})
    assert "Authorization: Bearer" in _error(response, 401)


async def test_a_wrong_admin_key_is_401(admin: Admin) -> None:
    response = await admin.http.get("/admin/keys", headers={"authorization": "Bearer nope"})
    assert "not valid" in _error(response, 401)


async def test_a_user_key_is_refused_with_403_wherever_it_is_sent(admin: Admin) -> None:
    user = (await admin.create(name="user"))["key"]
    for headers in ({"authorization": f"Bearer {user}"}, {"x-goog-api-key": user}):
        response = await admin.http.get("/admin/keys", headers={"authorization": "", **headers})
        assert "admin key" in _error(response, 403)
        assert user not in response.text


async def test_an_unsupported_method_is_405_after_authentication(admin: Admin) -> None:
    response = await admin.http.put("/admin/keys")
    assert "GET, POST" in _error(response, 405)


# --- keys ------------------------------------------------------------------------------------


async def test_create_with_every_field_then_show_reads_it_back(admin: Admin) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = {
        "name": "team-a", "owner": "alice@example.com", "metadata": {"team": "a", "n": [1, 2]},
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "allowed_models": ["smollm2-*", "budget-thinker"], "allowed_ips": ["10.0.0.0/8"],
        "rpm": 60, "tpm": 100_000, "rpd": 5000, "max_concurrent": 4,
        "budget_total_usd": "100.50", "budget_period": "day", "budget_period_usd": 2.25,
        "translation": "strict", "allowed_passthrough": ["googleSearch", "service_tier"],
        "store_conversations": False,
    }
    created = await admin.create(**body)
    assert created["key"].startswith("cg-") and created["prefix"] == created["key"][:11]
    shown = (await admin.http.get(f"/admin/keys/{created['id']}")).json()
    assert "key" not in shown
    assert {k: shown[k] for k in body} == body | {
        "budget_total_usd": "100.5", "budget_period_usd": "2.25"}
    assert shown["status"] == "active" and shown["updated_at"] is None
    record = await admin.keys.authenticate(created["key"])
    assert record is not None and record.budget_period_usd == Decimal("2.25")
    assert record.allows_model("smollm2-135m-instruct") and not record.allows_model("level-thinker")
    assert record.allows_address("10.1.2.3") and not record.allows_address("192.168.0.1")


async def test_list_shows_every_key_never_a_secret(admin: Admin) -> None:
    first = await admin.create(name="one")
    second = await admin.create(name="two")
    response = await admin.http.get("/admin/keys")
    names = [k["name"] for k in response.json()["keys"]]
    assert names == ["one", "two"]
    assert first["key"] not in response.text and second["key"] not in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": 7}, "name"),
        ({}, "name"),
        ({"name": "x", "rpm": -1}, "rpm"),
        ({"name": "x", "rpm": 10**8}, "rpm"),
        ({"name": "x", "rpm": 1.5}, "rpm"),
        ({"name": "x", "rpm": True}, "rpm"),
        ({"name": "x", "tpm": "100"}, "tpm"),
        ({"name": "x", "budget_total_usd": "0"}, "budget_total_usd"),
        ({"name": "x", "budget_total_usd": "-5"}, "budget_total_usd"),
        ({"name": "x", "budget_total_usd": "ten"}, "budget_total_usd"),
        ({"name": "x", "budget_period": "day"}, "budget_period"),
        ({"name": "x", "budget_period_usd": "5"}, "budget_period"),
        ({"name": "x", "budget_period": "week", "budget_period_usd": "5"}, "budget_period"),
        ({"name": "x", "allowed_ips": ["10.0.0.1/8"]}, "allowed_ips"),
        ({"name": "x", "allowed_ips": ["not-an-ip"]}, "allowed_ips"),
        ({"name": "x", "allowed_ips": "10.0.0.0/8"}, "allowed_ips"),
        ({"name": "x", "allowed_models": ["gpt-9"]}, "allowed_models"),
        ({"name": "x", "allowed_models": ["claude-*"]}, "allowed_models"),
        ({"name": "x", "metadata": [1, 2]}, "metadata"),
        ({"name": "x", "metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "expires_at": "soon"}, "expires_at"),
        ({"name": "x", "translation": "loose"}, "translation"),
        ({"name": "x", "allowed_passthrough": ["googleSerch"]}, "allowed_passthrough"),
        ({"name": "x", "allowed_passthrough": "n"}, "allowed_passthrough"),
        ({"name": "x", "store_conversations": "no"}, "store_conversations"),
        ({"name": "x", "store_conversations": 0}, "store_conversations"),
    ],
)
async def test_bad_create_bodies_are_400s_naming_the_field(
    admin: Admin, body: dict[str, Any], field: str
) -> None:
    response = await admin.http.post("/admin/keys", json=body)
    assert field in _error(response, 400)
    assert await admin.keys.count(include_revoked=True) == 0


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1]", b'"name"'])
async def test_a_body_that_is_not_a_json_object_is_400(admin: Admin, raw: bytes) -> None:
    response = await admin.http.post("/admin/keys", content=raw)
    _error(response, 400)


async def test_a_duplicate_active_name_is_400(admin: Admin) -> None:
    await admin.create(name="dup")
    response = await admin.http.post("/admin/keys", json={"name": "dup"})
    assert "already exists" in _error(response, 400)


async def test_patch_changes_only_what_it_names_and_null_clears(admin: Admin) -> None:
    created = await admin.create(name="p", rpm=10, tpm=1000, owner="bob")
    response = await admin.http.patch(f"/admin/keys/{created['id']}",
                                      json={"rpm": 20, "owner": None})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["rpm"], updated["tpm"], updated["owner"]) == (20, 1000, None)
    assert updated["updated_at"] is not None
    assert updated["allowed_passthrough"] == []
    response = await admin.http.patch(f"/admin/keys/{created['id']}",
                                      json={"allowed_passthrough": ["n", "candidateCount"]})
    assert response.json()["allowed_passthrough"] == ["n", "candidateCount"]
    response = await admin.http.patch(f"/admin/keys/{created['id']}",
                                      json={"allowed_passthrough": None})
    assert response.json()["allowed_passthrough"] == []
    assert updated["store_conversations"] is True
    response = await admin.http.patch(f"/admin/keys/{created['id']}",
                                      json={"store_conversations": False})
    assert response.json()["store_conversations"] is False
    response = await admin.http.patch(f"/admin/keys/{created['id']}",
                                      json={"store_conversations": None})
    assert response.json()["store_conversations"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "no field"), ({"name": None}, "name"), ({"rpm": 0}, "rpm"),
     ({"budget_period": "month"}, "budget_period"), ({"id": 5}, "id")],
)
async def test_bad_patches_are_400s(admin: Admin, body: dict[str, Any], field: str) -> None:
    created = await admin.create(name="p", rpm=10)
    response = await admin.http.patch(f"/admin/keys/{created['id']}", json=body)
    assert field in _error(response, 400)
    assert (await admin.keys.show(str(created["id"]))).rpm == 10


async def test_unknown_keys_are_404_on_every_key_route(admin: Admin) -> None:
    for method, path in [("GET", "/admin/keys/99"), ("PATCH", "/admin/keys/99"),
                         ("DELETE", "/admin/keys/nobody"), ("POST", "/admin/keys/99/revoke"),
                         ("POST", "/admin/keys/99/rotate")]:
        response = await admin.http.request(method, path, json={"rpm": 1})
        assert "no API key" in _error(response, 404)


async def test_revoke_then_the_key_stops_authenticating(admin: Admin) -> None:
    created = await admin.create(name="r")
    response = await admin.http.post(f"/admin/keys/{created['name']}/revoke")
    assert response.json()["status"] == "revoked"
    record = await admin.keys.authenticate(created["key"])
    assert record is not None and record.revoked


async def test_rotate_returns_a_new_key_and_the_old_one_stops_working(admin: Admin) -> None:
    created = await admin.create(name="rot", rpm=7)
    response = await admin.http.post(f"/admin/keys/{created['prefix']}/rotate")
    rotated = response.json()
    assert response.status_code == 200
    assert rotated["id"] == created["id"] and rotated["rpm"] == 7
    assert rotated["key"] != created["key"] and rotated["prefix"] == rotated["key"][:11]
    assert await admin.keys.authenticate(created["key"]) is None
    new = await admin.keys.authenticate(rotated["key"])
    assert new is not None and new.id == created["id"]


async def test_rotating_a_revoked_key_is_refused(admin: Admin) -> None:
    created = await admin.create(name="gone")
    await admin.http.post(f"/admin/keys/{created['id']}/revoke")
    response = await admin.http.post(f"/admin/keys/{created['id']}/rotate")
    assert "revoked" in _error(response, 400)


async def test_delete_removes_the_key_but_keeps_its_usage(admin: Admin) -> None:
    created = await admin.create(name="del")
    await _record_usage(admin.database, created["id"], "budget-thinker", "0.25")
    response = await admin.http.delete(f"/admin/keys/{created['id']}")
    assert response.json()["deleted"]["name"] == "del"
    assert await admin.keys.authenticate(created["key"]) is None
    usage = (await admin.http.get("/admin/usage", params={"group_by": "key"})).json()
    assert usage["totals"][0]["key_id"] == created["id"]
    assert usage["totals"][0]["cost_usd"] == "0.25"


async def test_the_plaintext_key_never_reaches_a_log(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await admin.create(name="quiet")
    rotated = (await admin.http.post(f"/admin/keys/{created['id']}/rotate")).json()
    await admin.http.get("/admin/keys", headers={"authorization": f"Bearer {rotated['key']}"})
    assert caplog.records, "the access log should have recorded the requests"
    for secret in (created["key"], rotated["key"], ADMIN):
        assert secret not in caplog.text


# --- usage -----------------------------------------------------------------------------------


async def _record_usage(
    database: Database, key_id: int, model: str, cost: str, when: datetime | None = None
) -> None:
    record = UsageRecord(
        request_id=f"r{key_id}-{model}-{cost}-{(when or datetime.now(UTC)).timestamp()}"[:32],
        key_id=key_id, model=model, provider="fake", upstream_model=model, dialect="gemini",
        stream=False, status=200, failure_class=None, prompt_tokens=10, output_tokens=5,
        thoughts_tokens=0, cached_tokens=0, cost_usd=Decimal(cost), latency_ms=12.0,
        ttfb_ms=None, created_at=when or datetime.now(UTC),
    )
    async with database.engine.begin() as conn:
        await conn.execute(insert(usage_records).values(record.as_row()))


async def test_usage_totals_by_model_and_filters(admin: Admin) -> None:
    await _record_usage(admin.database, 1, "budget-thinker", "0.1")
    await _record_usage(admin.database, 1, "level-thinker", "0.2")
    await _record_usage(admin.database, 2, "level-thinker", "0.3")
    by_model = (await admin.http.get("/admin/usage", params={"group_by": "model"})).json()
    assert [(t["model"], t["requests"], t["cost_usd"]) for t in by_model["totals"]] == [
        ("budget-thinker", 1, "0.1"), ("level-thinker", 2, "0.5")]
    only_key_2 = (await admin.http.get("/admin/usage", params={"key_id": "2"})).json()
    assert [(t["key_id"], t["total_tokens"]) for t in only_key_2["totals"]] == [(2, 15)]


async def test_usage_since_and_until_bound_by_day(admin: Admin) -> None:
    old = datetime(2024, 1, 1, 12, tzinfo=UTC)
    await _record_usage(admin.database, 1, "budget-thinker", "1", old)
    await _record_usage(admin.database, 1, "budget-thinker", "2", old + timedelta(days=1))
    response = await admin.http.get(
        "/admin/usage", params={"group_by": "day", "since": "2024-01-02", "until": "2024-01-03"})
    assert [(t["day"], t["requests"]) for t in response.json()["totals"]] == [("2024-01-02", 1)]


async def test_usage_csv_export(admin: Admin) -> None:
    await _record_usage(admin.database, 3, "budget-thinker", "0.5")
    records = await admin.http.get("/admin/usage", params={"format": "csv"})
    assert records.headers["content-type"].startswith("text/csv")
    lines = records.text.splitlines()
    assert lines[0].startswith("request_id,key_id,model") and len(lines) == 2
    totals = await admin.http.get("/admin/usage", params={"format": "csv", "group_by": "key"})
    assert totals.text.splitlines()[1].startswith("3,,,1,")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"group_by": "week"}, "group_by"), ({"since": "yesterday"}, "since"),
     ({"until": "2024-01-01T00:00:00"}, "until"), ({"key_id": "abc"}, "key_id"),
     ({"format": "xml"}, "format"), ({"key": "x"}, "key")],
)
async def test_bad_usage_queries_are_400s(
    admin: Admin, params: dict[str, str], field: str
) -> None:
    assert field in _error(await admin.http.get("/admin/usage", params=params), 400)


# --- OpenAPI ---------------------------------------------------------------------------------


async def test_the_openapi_document_is_valid_and_describes_every_admin_route(
    admin: Admin,
) -> None:
    response = await admin.http.get("/admin/openapi.json")
    document = response.json()
    validate(document)
    served = {route.path for route in admin.app.routes if isinstance(route, Route)}
    assert served == set(document["paths"]) == set(ADMIN_PATHS)
    for route in admin.app.routes:
        assert isinstance(route, Route)
        described = set(document["paths"][route.path]) - {"parameters"}
        assert described, route.path
        for operation in described:
            responses = document["paths"][route.path][operation]["responses"]
            assert {"401", "403"} <= set(responses)


async def test_the_documented_create_schema_refuses_what_the_api_refuses(admin: Admin) -> None:
    import jsonschema

    document = orjson.loads((await admin.http.get("/admin/openapi.json")).content)
    schemas = document["components"]["schemas"]
    create = {**schemas["KeyCreate"], "$defs": schemas}
    validator = jsonschema.Draft202012Validator(create)
    assert validator.is_valid({"name": "a", "rpm": 5, "budget_total_usd": "1.5"})
    assert not validator.is_valid({"name": "a", "colour": "red"})
    assert not validator.is_valid({"name": "a", "rpm": 0})
    assert not validator.is_valid({"rpm": 5})
    assert validator.is_valid({"name": "a", "allowed_passthrough": ["googleSearch"]})
    assert not validator.is_valid({"name": "a", "allowed_passthrough": ["googleSerch"]})


# --- ids beyond 64 bits, 405s, the schema against the code ------------------------------------

HUGE_IDS = [str(2**63), str(2**64), "9" * 30, "9" * 5000]


@pytest.mark.parametrize("ident", HUGE_IDS)
async def test_an_id_beyond_64_bits_is_404_on_every_key_route(admin: Admin, ident: str) -> None:
    for method, path in [("GET", f"/admin/keys/{ident}"), ("PATCH", f"/admin/keys/{ident}"),
                         ("DELETE", f"/admin/keys/{ident}"),
                         ("POST", f"/admin/keys/{ident}/revoke"),
                         ("POST", f"/admin/keys/{ident}/rotate")]:
        body = {"rpm": 5} if method == "PATCH" else None
        response = await admin.http.request(method, path, json=body)
        assert "no API key has id" in _error(response, 404), (method, path)


@pytest.mark.parametrize("key_id", HUGE_IDS)
async def test_a_usage_key_id_beyond_64_bits_is_400(admin: Admin, key_id: str) -> None:
    response = await admin.http.get("/admin/usage", params={"key_id": key_id})
    assert _error(response, 400) == "key_id must be a key's numeric id"


async def test_the_largest_64_bit_id_is_simply_not_found(admin: Admin) -> None:
    largest = str(2**63 - 1)
    assert (await admin.http.get("/admin/usage", params={"key_id": largest})).status_code == 200
    _error(await admin.http.get(f"/admin/keys/{largest}"), 404)


async def test_a_405_names_the_allowed_methods(admin: Admin) -> None:
    response = await admin.http.put("/admin/keys")
    _error(response, 405)
    assert response.headers["allow"] == "GET, POST"
    created = await admin.create(name="m")
    response = await admin.http.put(f"/admin/keys/{created['id']}/revoke")
    _error(response, 405)
    assert response.headers["allow"] == "POST"


# Bodies the API refuses with 400; the published schema must refuse each of them too.
REFUSED_CREATES = [
    {"name": "12345"},
    {"name": " padded"},
    {"name": "padded "},
    {"name": "cg-lookalike"},
    {"name": ""},
    {"name": "x", "owner": ""},
    {"name": "x", "owner": "   "},
    {"name": "x", "budget_total_usd": "0"},
    {"name": "x", "budget_total_usd": "0.000"},
    {"name": "x", "budget_total_usd": "1000000000.5"},
    {"name": "x", "budget_total_usd": "12345678901"},
    {"name": "x", "budget_total_usd": 2_000_000_000},
    {"name": "x", "budget_total_usd": "1.1234567"},
    {"name": "x", "budget_period": "day"},
    {"name": "x", "budget_period_usd": "5"},
    {"name": "x", "allowed_models": [""]},
    {"name": "x", "allowed_ips": [" 10.0.0.0/8"]},
    {"name": "x", "allowed_ips": ["10.0.0.0/8"] * 1001},
    {"name": "x", "rpm": 0},
]


@pytest.mark.parametrize("body", REFUSED_CREATES, ids=lambda b: repr(b)[:60])
async def test_the_schema_refuses_every_create_the_api_refuses(
    admin: Admin, body: dict[str, Any],
) -> None:
    import jsonschema

    _error(await admin.http.post("/admin/keys", json=body), 400)
    document = orjson.loads((await admin.http.get("/admin/openapi.json")).content)
    schemas = document["components"]["schemas"]
    validator = jsonschema.Draft202012Validator({**schemas["KeyCreate"], "$defs": schemas})
    assert not validator.is_valid(body)


@pytest.mark.parametrize("body", [
    {"name": "x", "budget_total_usd": "1000000000"},
    {"name": "x", "budget_total_usd": "0.000001", "budget_period": "day",
     "budget_period_usd": 1_000_000_000},
    {"name": "a b", "owner": "ops team", "allowed_ips": ["10.0.0.0/8"]},
], ids=lambda b: repr(b)[:60])
async def test_the_schema_accepts_what_the_api_accepts(
    admin: Admin, body: dict[str, Any],
) -> None:
    import jsonschema

    assert (await admin.http.post("/admin/keys", json=body)).status_code == 201
    document = orjson.loads((await admin.http.get("/admin/openapi.json")).content)
    schemas = document["components"]["schemas"]
    validator = jsonschema.Draft202012Validator({**schemas["KeyCreate"], "$defs": schemas})
    assert validator.is_valid(body)


@pytest.mark.parametrize("key_id", [-1, 2**63])
async def test_the_schema_refuses_usage_key_ids_the_api_refuses(
    admin: Admin, key_id: int,
) -> None:
    import jsonschema

    _error(await admin.http.get("/admin/usage", params={"key_id": str(key_id)}), 400)
    document = orjson.loads((await admin.http.get("/admin/openapi.json")).content)
    (parameter,) = [p for p in document["paths"]["/admin/usage"]["get"]["parameters"]
                    if p["name"] == "key_id"]
    assert not jsonschema.Draft202012Validator(parameter["schema"]).is_valid(key_id)
