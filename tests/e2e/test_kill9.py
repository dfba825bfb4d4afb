"""kill -9 of the gateway under load loses no usage record of a response the caller received.

A live `cometgate serve` (SQLite, its embedded default) answers concurrent unary and streamed
requests from a fake upstream on a real socket. Mid-load it gets SIGKILL; it is then started
again on the same data directory, and every response a client received whole must have its
usage record, with the tokens the client was told, under the x-request-id it was given.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from cometgate.dialects.gemini.estimate import estimate
from tests.contract.upstreams import served
from tests.e2e.conftest import create_key
from tests.e2e.fake_gateway import (
    ADMIN_KEY,
    MODEL,
    ServeProcess,
    cost_of,
    final_usage,
    gateway_config,
    gateway_env,
    start_serve,
)
from tests.e2e.upstream_gate import UpstreamGate
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

WORKERS = 12
KILL_AFTER_RECEIVED = 60  # then SIGKILL within the next few responses
MAX_REQUESTS = 2000  # bounds the load even if the kill never came
PATHS = (
    f"/v1beta/models/{MODEL}:generateContent",
    f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
    f"/v1beta/models/{MODEL}:streamGenerateContent",
)
BODY = {"contents": [{"role": "user", "parts": [{"text": "Count to three."}]}],
        "generationConfig": {"maxOutputTokens": 50}}


class Load:
    """Concurrent callers; `received` maps the request id of each response received whole to
    its usageMetadata."""

    def __init__(self, gateway: ServeProcess, key: str, kill_at: int) -> None:
        self.gateway = gateway
        self.key = key
        self.kill_at = kill_at
        self.received: dict[str, dict[str, Any]] = {}
        self.cut_off = 0
        self.enough = asyncio.Event()  # kill_at responses received (or a caller gave up)
        self.killed = asyncio.Event()
        self._numbers = itertools.count()

    async def caller(self, http: httpx.AsyncClient) -> None:
        try:
            await self._call_until_killed(http)
        finally:
            self.enough.set()

    async def _call_until_killed(self, http: httpx.AsyncClient) -> None:
        while not self.killed.is_set():
            number = next(self._numbers)
            if number >= MAX_REQUESTS:
                return
            path = PATHS[number % len(PATHS)]
            try:
                response = await http.post(self.gateway.base_url + path, json=BODY,
                                           headers={"x-goog-api-key": self.key})
            except httpx.TransportError:
                self.cut_off += 1
                continue
            usage = final_usage(path, response)
            if usage is None:
                self.cut_off += 1
                continue
            self.received[response.headers["x-request-id"]] = usage
            if len(self.received) >= self.kill_at:
                self.enough.set()

    async def killer(self) -> None:
        await self.enough.wait()
        self.gateway.kill9()
        self.killed.set()


async def _records_by_request(gateway: ServeProcess) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.get(gateway.base_url + "/admin/usage", params={"format": "csv"},
                                  headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return {row["request_id"]: row for row in csv.DictReader(io.StringIO(response.text))}


async def test_every_fully_received_response_has_its_record_after_kill_9(
    tmp_path: Path,
) -> None:
    upstream = FakeOpenAIUpstream()
    upstream.default = Reply(prompt_tokens=11, completion_tokens=6, chunks=4)
    gate = UpstreamGate(upstream.app)
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "kill9")
    env = gateway_env()
    async with served(gate) as (upstream_url,):
        config = gateway_config(upstream_url)
        gateway = await start_serve(tmp_path, "first", config, data_dir, env)
        try:
            load = Load(gateway, key, KILL_AFTER_RECEIVED + random.randrange(WORKERS))
            limits = httpx.Limits(max_connections=WORKERS)
            async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
                await asyncio.gather(
                    load.killer(),
                    *(load.caller(http) for _ in range(WORKERS)),
                )
        finally:
            gateway.stop()
        assert len(load.received) >= KILL_AFTER_RECEIVED
        restarted = await start_serve(tmp_path, "restarted", config, data_dir, env)
        try:
            records = await _records_by_request(restarted)
        finally:
            restarted.stop()
    missing = sorted(set(load.received) - set(records))
    assert not missing, (f"{len(missing)} of {len(load.received)} received responses have no "
                         f"record ({load.cut_off} requests were cut off by the kill)")
    for request_id, usage in load.received.items():
        row = records[request_id]
        assert (int(row["prompt_tokens"]), int(row["output_tokens"])) == (
            usage["promptTokenCount"], usage["candidatesTokenCount"]) == (11, 6)
        assert row["status"] == "200"
        assert Decimal(row["cost_usd"]) == cost_of(11, 6)
    # Records of requests the kill cut off may exist (committed before the last byte went out);
    # none may exist of a request that never reached the gateway.
    assert len(records) <= gate.served


async def test_a_stream_cut_by_kill_9_is_recorded_once_as_interrupted(tmp_path: Path) -> None:
    """A stream whose headers and first events went out when the gateway was killed: after
    the restart it has exactly one record — status 500, class `interrupted`, the admission's
    prompt estimate at its price — settled from the reservation journaled as it started. A
    stream that finished before the kill keeps its own record, and no second one."""
    upstream = FakeOpenAIUpstream()
    data_dir = tmp_path / "data"
    key = create_key(data_dir, "kill9-stream")
    env = gateway_env()
    path = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    async with served(upstream.app) as (upstream_url,):
        config = gateway_config(upstream_url)
        gateway = await start_serve(tmp_path, "first", config, data_dir, env)
        try:
            async with httpx.AsyncClient(timeout=30.0) as http:
                upstream.replies.append(Reply(prompt_tokens=11, completion_tokens=6))
                finished = await http.post(gateway.base_url + path, json=BODY,
                                           headers={"x-goog-api-key": key})
                assert final_usage(path, finished) is not None
                upstream.replies.append(Reply(endless=True))
                async with http.stream("POST", gateway.base_url + path, json=BODY,
                                       headers={"x-goog-api-key": key}) as cut:
                    assert cut.status_code == 200
                    received = 0
                    async for piece in cut.aiter_bytes():
                        received += len(piece)
                        if received > 2048:  # events are flowing: the stream is under way
                            break
                    gateway.kill9()
        finally:
            gateway.stop()
        restarted = await start_serve(tmp_path, "restarted", config, data_dir, env)
        try:
            records = await _records_by_request(restarted)
        finally:
            restarted.stop()
    assert set(records) == {finished.headers["x-request-id"], cut.headers["x-request-id"]}
    done = records[finished.headers["x-request-id"]]
    assert (done["status"], done["failure_class"], done["prompt_tokens"]) == ("200", "", "11")
    interrupted = records[cut.headers["x-request-id"]]
    prompt = estimate(orjson.dumps(BODY))[0]
    assert (interrupted["status"], interrupted["failure_class"], interrupted["stream"]) == (
        "500", "interrupted", "true")
    assert (int(interrupted["prompt_tokens"]), int(interrupted["output_tokens"])) == (prompt, 0)
    assert Decimal(interrupted["cost_usd"]) == cost_of(prompt, 0)
    assert interrupted["provider"] == "fake"
