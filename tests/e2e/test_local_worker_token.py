"""The live gateway's local-model worker answers only the gateway: its loopback port refuses a
request without the token the supervisor made at start, and the token is not on its command
line."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.conftest import MODEL, LiveGateway, cmdline


def test_the_worker_port_refuses_callers_without_the_start_token(
    gateway: LiveGateway, find_workers: Callable[[int], list[int]],
) -> None:
    (worker,) = find_workers(gateway.pid)
    argv = cmdline(worker).split()
    port = argv[argv.index("--port") + 1]
    assert not any("token" in part for part in argv)
    for path in ("/health", "/v1/models"):
        assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 401
    stolen = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=10,
                        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert stolen.status_code == 401
    # The gateway itself, holding the token, is answered.
    answered = httpx.post(
        f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent", timeout=60,
        headers={"x-goog-api-key": gateway.key},
        json={"contents": [{"parts": [{"text": "Hi"}]}],
              "generationConfig": {"maxOutputTokens": 2}})
    assert answered.status_code == 200
