"""The local model's worker is killed under the live gateway: callers get Google's 503 envelope
while it is down, readiness drops while liveness holds, and the supervisor brings it back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import MODEL, LiveGateway

pytestmark = pytest.mark.model

OUTAGE_SEEN_WITHIN_SECONDS = 10.0
RECOVERY_WITHIN_SECONDS = 120.0
BODY = {"contents": [{"parts": [{"text": "Hi"}]}], "generationConfig": {"maxOutputTokens": 2}}


def only_worker(gateway: LiveGateway, find_workers: Callable[[int], list[int]]) -> int:
    workers = find_workers(gateway.pid)
    assert len(workers) == 1, workers
    return workers[0]


def test_worker_crash_gives_503_then_recovers(
    gateway: LiveGateway, find_workers: Callable[[int], list[int]]
) -> None:
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent"
    with httpx.Client(headers={"x-goog-api-key": gateway.key}, timeout=120) as http:
        assert http.post(url, json=BODY).status_code == 200
        victim = only_worker(gateway, find_workers)
        os.kill(victim, signal.SIGKILL)

        # Poll without pause: the supervisor restarts the worker within a second or two.
        deadline = time.monotonic() + OUTAGE_SEEN_WITHIN_SECONDS
        while (response := http.post(url, json=BODY)).status_code == 200:
            assert time.monotonic() < deadline, "no request failed after the worker was killed"
        readiness = http.get(f"{gateway.base_url}/readyz").status_code
        liveness = http.get(f"{gateway.base_url}/healthz").status_code

        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == 503
        assert error["status"] == "UNAVAILABLE"
        assert isinstance(error["message"], str) and error["message"]
        assert liveness == 200
        assert readiness == 503

        deadline = time.monotonic() + RECOVERY_WITHIN_SECONDS
        while http.get(f"{gateway.base_url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the worker did not come back"
            time.sleep(0.2)
        recovered = http.post(url, json=BODY)
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["candidates"][0]["content"]["parts"][0]["text"]
        assert only_worker(gateway, find_workers) != victim
