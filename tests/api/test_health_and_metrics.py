"""Operational endpoints: liveness and readiness (unauthenticated) and Prometheus metrics
(behind the admin key unless `server.metrics` says otherwise)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cometgate.settings import Settings, load_settings
from tests.api.bodies import GENERATE, text_body
from tests.api.conftest import ClientOpener, create_key
from tests.conftest import FAKE_MODELS_YAML
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def test_healthz(client: httpx.AsyncClient) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_head_root_answers_without_a_key(client: httpx.AsyncClient) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.head("/")
    assert (response.status_code, response.content) == (200, b"")
    assert "x-request-id" in response.headers


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_root_serves_nothing_else(client: httpx.AsyncClient, method: str) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.request(method, "/")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": 404, "message": f"Method not found: {method} /",
                                        "status": "NOT_FOUND"}


async def test_readyz_is_ready_with_an_unsupervised_provider(client: httpx.AsyncClient) -> None:
    del client.headers["x-goog-api-key"]
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "upstreams": {}}


async def test_metrics_count_requests_latency_and_tokens(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(prompt_tokens=9, completion_tokens=4))
    assert (await client.post(GENERATE, json=text_body())).status_code == 200
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    route = frozenset({("route", "generateContent"), ("status", "200")})
    assert values[("cometgate_requests_total", route)] == 1
    duration = frozenset({("route", "generateContent")})
    assert values[("cometgate_request_duration_seconds_count", duration)] == 1
    model = "smollm2-135m-instruct"
    assert values[("cometgate_tokens_total",
                   frozenset({("model", model), ("direction", "in")}))] == 9
    assert values[("cometgate_tokens_total",
                   frozenset({("model", model), ("direction", "out")}))] == 4


async def test_metrics_count_streamed_tokens(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(prompt_tokens=3, completion_tokens=8))
    path = "/v1beta/models/smollm2-135m-instruct:streamGenerateContent?alt=sse"
    assert (await client.post(path, json=text_body())).status_code == 200
    values = samples((await client.get("/metrics")).text)
    key = ("cometgate_tokens_total",
           frozenset({("model", "smollm2-135m-instruct"), ("direction", "out")}))
    assert values[key] == 8


async def test_metrics_count_upstream_errors(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=500, error_type="server_error"))
    upstream.replies.append(Reply(status=429, error_type="requests"))
    await client.post(GENERATE, json=text_body())
    await client.post(GENERATE, json=text_body())
    values = samples((await client.get("/metrics")).text)
    transient = frozenset({("provider", "fake"), ("failure_class", "transient")})
    limited = frozenset({("provider", "fake"), ("failure_class", "rate_limited")})
    assert values[("cometgate_upstream_errors_total", transient)] == 1
    assert values[("cometgate_upstream_errors_total", limited)] == 1
    statuses = frozenset({("route", "generateContent"), ("status", "503")})
    assert values[("cometgate_requests_total", statuses)] == 1


async def test_metric_route_labels_stay_bounded(client: httpx.AsyncClient) -> None:
    # Callers choose the `:method` suffix; it must not mint a new label value per request.
    for index in range(3):
        await client.post(f"/v1beta/models/x:bogusMethod{'z' * index}", json=text_body())
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    routes = {
        sample.labels["route"]
        for family in families if family.name == "cometgate_requests"
        for sample in family.samples
    }
    assert not any(route.startswith("bogusMethod") for route in routes), routes


METRICS_ADMIN = "admin-metrics-0123456789"


def _metrics_settings(tmp_path: Path, access: str | None, admin_key: str | None) -> Settings:
    config = yaml.safe_load(FAKE_MODELS_YAML)
    config["server"] = {} if access is None else {"metrics": access}
    path = tmp_path / "metrics.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"HOME": str(tmp_path)} | ({"COMETGATE_ADMIN_KEY": admin_key} if admin_key else {})
    return load_settings(path, data_dir=tmp_path / "metrics-data", env=env)


async def test_metrics_need_the_admin_key_by_default(
    tmp_path: Path, open_client: ClientOpener,
) -> None:
    async with open_client(_metrics_settings(tmp_path, None, METRICS_ADMIN)) as http:
        anonymous = await http.get("/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error": {
            "code": 401, "status": "UNAUTHENTICATED",
            "message": "Admin routes need 'Authorization: Bearer <admin key>'."}}
        key = await create_key(_metrics_settings(tmp_path, None, METRICS_ADMIN))
        as_caller = await http.get("/metrics", headers={"authorization": f"Bearer {key}"})
        assert as_caller.status_code == 403
        admitted = await http.get("/metrics",
                                  headers={"authorization": f"Bearer {METRICS_ADMIN}"})
        assert admitted.status_code == 200
        assert "cometgate_requests_total" in admitted.text


async def test_metrics_without_an_admin_key_configured_are_not_served(
    tmp_path: Path, open_client: ClientOpener,
) -> None:
    async with open_client(_metrics_settings(tmp_path, "admin", None)) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_metrics_off_are_not_found_even_for_the_admin(
    tmp_path: Path, open_client: ClientOpener,
) -> None:
    async with open_client(_metrics_settings(tmp_path, "off", METRICS_ADMIN)) as http:
        response = await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_ADMIN}"})
        assert response.status_code == 404
        assert response.json() == {"error": {
            "code": 404, "status": "NOT_FOUND", "message": "Method not found: GET /metrics"}}


async def test_metrics_open_need_no_key(tmp_path: Path, open_client: ClientOpener) -> None:
    async with open_client(_metrics_settings(tmp_path, "open", None)) as http:
        assert (await http.get("/metrics")).status_code == 200


async def test_metric_route_labels_come_from_the_matched_route(client: httpx.AsyncClient) -> None:
    calls = [
        ("GET", "/healthz"), ("POST", "/v1/chat/completions"), ("POST", "/chat/completions"),
        ("POST", "/v1/messages"), ("GET", "/v1beta/models"), ("GET", "/v1/models"),
        ("GET", "/v1beta/models/smollm2-135m-instruct"),
        ("POST", "/v1beta/models/x:countTokens"),
        ("GET", "/no/such/route/1"), ("POST", "/no/such/route/2"), ("GET", "/v1beta/modelz"),
    ]
    for method, path in calls:
        await client.request(method, path, json={})
    families = text_string_to_metric_families((await client.get("/metrics")).text)
    routes = {
        sample.labels["route"]
        for family in families if family.name == "cometgate_request_duration_seconds"
        for sample in family.samples
    }
    # Each dialect's versions share a label; every unmatched path shares one.
    assert routes == {"healthz", "chat.completions", "messages", "models.list", "models.get",
                      "countTokens", "unmatched"}
