"""Keys against the live server: Google's errors for a missing or unknown key, and a key revoked
with the CLI while the server runs stops working (after the server's short lookup cache)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import MODEL, LiveGateway, create_key

pytestmark = pytest.mark.model

Cli = Callable[..., subprocess.CompletedProcess[str]]
BODY = {"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"maxOutputTokens": 2}}
REVOCATION_DEADLINE_SECONDS = 30.0  # the server caches key lookups for 2 s
NO_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)


def generate(gateway: LiveGateway, headers: dict[str, str]) -> httpx.Response:
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent"
    return httpx.post(url, json=BODY, headers=headers, timeout=120)


def get_model(gateway: LiveGateway, key: str) -> httpx.Response:
    """A keyed request that needs no generation, cheap enough to poll."""
    url = f"{gateway.base_url}/v1beta/models/{MODEL}"
    return httpx.get(url, headers={"x-goog-api-key": key}, timeout=30)


def test_missing_key_is_permission_denied(gateway: LiveGateway) -> None:
    response = generate(gateway, {})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert error["message"] == NO_KEY_MESSAGE


def test_invalid_key_is_api_key_invalid(gateway: LiveGateway) -> None:
    response = generate(gateway, {"x-goog-api-key": "cg-this-key-was-never-issued"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == "API key not valid. Please pass a valid API key."
    reasons = [d.get("reason") for d in error["details"]]
    assert "API_KEY_INVALID" in reasons


def test_models_routes_need_a_key_too(gateway: LiveGateway) -> None:
    response = httpx.get(f"{gateway.base_url}/v1beta/models", timeout=30)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_revoked_key_stops_working(gateway: LiveGateway, cli: Cli) -> None:
    key = create_key(gateway.data_dir, "short-lived")
    assert generate(gateway, {"x-goog-api-key": key}).status_code == 200
    done = cli("keys", "revoke", "short-lived", "--data-dir", str(gateway.data_dir))
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + REVOCATION_DEADLINE_SECONDS
    status = 200
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        status = get_model(gateway, key).status_code
    assert status == 400
    error = generate(gateway, {"x-goog-api-key": key}).json()["error"]
    assert error["message"] == "API key not valid. Please pass a valid API key."
    # The session's own key is untouched.
    assert generate(gateway, {"x-goog-api-key": gateway.key}).status_code == 200


def test_keys_list_never_shows_a_key(gateway: LiveGateway, cli: Cli) -> None:
    listed = cli("keys", "list", "--data-dir", str(gateway.data_dir))
    assert listed.returncode == 0, listed.stderr
    assert "e2e" in listed.stdout
    assert gateway.key not in listed.stdout + listed.stderr
    # Not even the secret part after a shown prefix.
    assert gateway.key[-16:] not in listed.stdout


def test_first_start_made_no_default_key(gateway: LiveGateway) -> None:
    # A key existed before `serve` first ran, so it must not have created and printed another.
    log = gateway.log_path.read_text(errors="replace")
    assert "Created your first API key" not in log
    assert gateway.key not in log
