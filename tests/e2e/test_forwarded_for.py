"""X-Forwarded-For is believed only from the proxies listed in `server.trusted_proxies`: a caller
on loopback cannot pick the address a key's IP allow-list is checked against."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import LiveGateway, run_cli, start_gateway

MODELS = """
routing: {retries: 0}
providers:
  nowhere: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  far:
    provider: nowhere
    input_token_limit: 1000
    output_token_limit: 100
"""
GENERATE = "/v1beta/models/far:generateContent"
BODY = {"contents": [{"parts": [{"text": "hello there"}]}]}


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory,
               pytestconfig: pytest.Config) -> Iterator[LiveGateway]:
    yield from start_gateway(tmp_path_factory.mktemp("xff-none"), pytestconfig, MODELS)


@pytest.fixture(scope="module")
def behind_local_proxy(tmp_path_factory: pytest.TempPathFactory,
                       pytestconfig: pytest.Config) -> Iterator[LiveGateway]:
    config = MODELS + "server: {trusted_proxies: [127.0.0.1]}\n"
    yield from start_gateway(tmp_path_factory.mktemp("xff-local"), pytestconfig, config)


def ten_slash_eight_key(gateway: LiveGateway) -> str:
    done = run_cli("keys", "create", "--name", "ten", "--ips", "10.0.0.0/8",
                   "--data-dir", str(gateway.data_dir))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def generate(gateway: LiveGateway, key: str, forwarded_for: str) -> httpx.Response:
    """Past the allow-list the call reaches for the upstream, whose port is closed: 503."""
    return httpx.post(gateway.base_url + GENERATE, json=BODY, timeout=10,
                      headers={"x-goog-api-key": key, "x-forwarded-for": forwarded_for})


def test_forwarded_for_from_loopback_is_not_believed_by_default(untrusting: LiveGateway) -> None:
    response = generate(untrusting, ten_slash_eight_key(untrusting), "10.1.2.3")
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    assert "127.0.0.1" in response.json()["error"]["message"]


def test_forwarded_for_from_a_listed_proxy_is_believed(behind_local_proxy: LiveGateway) -> None:
    key = ten_slash_eight_key(behind_local_proxy)
    admitted = generate(behind_local_proxy, key, "10.1.2.3")
    assert admitted.status_code == 503, admitted.text
    assert admitted.json()["error"]["status"] == "UNAVAILABLE"
    # The proxy's word names the caller: one outside the network is still refused.
    assert generate(behind_local_proxy, key, "192.0.2.7").status_code == 403
