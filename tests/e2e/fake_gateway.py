"""`cometgate serve` processes in front of the fake OpenAI upstream served on a real loopback
socket, for the accounting tests that kill and replicate the gateway.

The fake runs in the test's event loop (tests/contract/upstreams.served); each gateway is a
subprocess with its own environment, so the tests choose its storage, Redis and admin key.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.e2e.conftest import clean_env, cometgate_argv, free_port, log_tail, stop

MODEL = "priced"
UPSTREAM_MODEL = "priced-upstream"
# USD per million tokens.
INPUT_PRICE = Decimal("1000")
OUTPUT_PRICE = Decimal("2000")
ADMIN_KEY = "admin-" + "e2e-secret-" * 4
READY_TIMEOUT_SECONDS = 60.0


def gateway_config(upstream_url: str) -> str:
    return f"""
routing: {{retries: 0}}
providers:
  fake: {{kind: openai, base_url: "{upstream_url}/v1"}}
models:
  {MODEL}:
    provider: fake
    upstream_model: {UPSTREAM_MODEL}
    input_token_limit: 8192
    output_token_limit: 1000
    prices: {{input: "{INPUT_PRICE}", output: "{OUTPUT_PRICE}"}}
"""


def cost_of(prompt_tokens: int, output_tokens: int) -> Decimal:
    return (prompt_tokens * INPUT_PRICE + output_tokens * OUTPUT_PRICE) / Decimal(1_000_000)


def gateway_env(**variables: str) -> dict[str, str]:
    """The test's environment without COMETGATE_* overrides, plus `variables`."""
    return {**clean_env(), "COMETGATE_ADMIN_KEY": ADMIN_KEY, **variables}


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            stop(self.process)


async def start_serve(root: Path, name: str, config_text: str, data_dir: Path,
                      env: dict[str, str], *, workers: int = 1) -> ServeProcess:
    """Starts `cometgate serve --workers N` and returns once /readyz answers 200."""
    config = root / f"{name}.yaml"
    config.write_text(config_text, encoding="utf-8")
    log_path = root / f"{name}.log"
    port = free_port()
    argv = cometgate_argv("serve", "--data-dir", str(data_dir), "--port", str(port),
                          "--host", "127.0.0.1", "--config", str(config),
                          "--workers", str(workers))
    served = ServeProcess(_spawn(argv, log_path, env), f"http://127.0.0.1:{port}", log_path)
    try:
        await _wait_ready(served)
    except BaseException:
        served.stop()
        raise
    return served


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env)


async def _wait_ready(served: ServeProcess) -> None:
    step = 0.1
    async with httpx.AsyncClient(timeout=2.0) as http:
        for _ in range(int(READY_TIMEOUT_SECONDS / step)):
            if served.process.poll() is not None:
                raise AssertionError(f"cometgate serve exited with {served.process.returncode}:"
                                     f"\n{log_tail(served.log_path)}")
            try:
                if (await http.get(f"{served.base_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(step)
    raise AssertionError(f"/readyz not 200 in {READY_TIMEOUT_SECONDS}s:\n"
                         f"{log_tail(served.log_path)}")


def final_usage(path: str, response: httpx.Response) -> dict[str, Any] | None:
    """The usageMetadata of a response the client received whole, else None: a unary JSON
    body, an SSE stream whose last event ends the answer, or a complete JSON array."""
    if response.status_code != 200:
        return None
    try:
        if ":streamGenerateContent" not in path:
            usage: dict[str, Any] = response.json()["usageMetadata"]
            return usage
        if "alt=sse" in path:
            chunks = [orjson.loads(line[len("data: "):]) for line in response.text.splitlines()
                      if line.startswith("data: ")]
        else:
            chunks = orjson.loads(response.content)
    except (orjson.JSONDecodeError, KeyError, ValueError):
        return None
    if not chunks or "usageMetadata" not in chunks[-1]:
        return None
    if not chunks[-1].get("candidates", [{}])[0].get("finishReason"):
        return None
    usage = chunks[-1]["usageMetadata"]
    return usage
