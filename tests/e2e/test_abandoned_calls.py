"""A caller who hangs up is not served, not billed and not waited for.

A live `cometgate serve` in front of the three fake upstreams (OpenAI, Anthropic, Gemini kinds)
is called over a real socket by a client that closes it mid-call: during a slow non-streamed
call (the upstream holds its answer until its client leaves), and in the middle of an endless
stream. Each time the upstream must see its connection closed, the key's only concurrency slot
must be free at once for the next call, and the usage record must say 499 with the usage the
upstream had reported to a pass-through stream (Gemini repeats a running usage in every
event; OpenAI reports usage only at the end). A translated stream's decoder keeps the running
usage to itself until the stream ends, so its cut-off record carries none yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.contract.conftest import KINDS, Fakes
from tests.contract.upstreams import Fault
from tests.e2e.conftest import LiveGateway, run_cli
from tests.e2e.fake_upstreams_live import records_of, serve_before_fakes, usage_rows
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai

WAIT_SECONDS = 10.0  # bound on every wait for the gateway to react
STEP_SECONDS = 0.02
CALLERS = ("gemini", "openai")
# What a pass-through upstream has reported as usage when its endless stream is cut: Gemini's
# running usageMetadata (the fake's 8 prompt tokens), nothing from OpenAI (its usage comes in
# a last chunk that never came).
PROMPT_REPORTED = {"gemini": 8, "openai": 0}


@dataclass
class Live:
    gateway: LiveGateway
    fakes: Fakes
    key: str  # concurrency 1


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Live]:
    for running in serve_before_fakes(tmp_path_factory, pytestconfig, "abandoned"):
        done = run_cli("keys", "create", "--name", "one-at-a-time", "--concurrency", "1",
                       "--data-dir", str(running.gateway.data_dir))
        assert done.returncode == 0, done.stderr
        yield Live(running.gateway, running.fakes, done.stdout.strip())


@pytest.fixture(autouse=True)
def clean_scripts(live: Live) -> None:
    for fake in (live.fakes.openai, live.fakes.anthropic, live.fakes.gemini):
        fake.replies.clear()
    for layer in live.fakes.layers.values():
        layer.faults.clear()


def request_bytes(caller: str, kind: str, key: str, *, stream: bool) -> bytes:
    if caller == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path = f"/v1beta/models/{kind}-text:{method}"
        body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    else:
        path = "/v1/chat/completions"
        body = orjson.dumps({"model": f"{kind}-text", "stream": stream,
                             "messages": [{"role": "user", "content": "Hi"}]})
    head = (f"POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n")
    return head.encode() + body


def script_endless(kind: str, fakes: Fakes, *, firehose: bool) -> None:
    """A stream that never ends: paced, or as fast as the gateway reads (a firehose)."""
    flags = {"firehose": True} if firehose else {"endless": True}
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(**flags))
    elif kind == "openai":
        fakes.openai.replies.append(openai.Reply(**flags))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(**flags))


async def eventually(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS}s: {what}"
        await asyncio.sleep(STEP_SECONDS)


async def read_head(reader: asyncio.StreamReader) -> dict[str, str]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_SECONDS)
    status, *lines = head.decode("latin-1").split("\r\n")
    assert status.startswith("HTTP/1.1 200"), head
    return {name.lower(): value.strip() for name, _, value in
            (line.partition(":") for line in lines if line)}


async def call_then_hang_up(live: Live, caller: str, kind: str, *, stream: bool) -> str | None:
    """Sends a call on a raw socket and closes it: once the upstream has the request (a
    non-streamed call the upstream holds), or after the first kilobytes of an endless stream.
    Returns the request id when the headers came back."""
    port = int(live.gateway.base_url.rsplit(":", 1)[1])
    layer = live.fakes.layers[kind]
    before = len(layer.credentials)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request_id = None
    try:
        writer.write(request_bytes(caller, kind, live.key, stream=stream))
        await writer.drain()
        if stream:
            request_id = (await read_head(reader))["x-request-id"]
            received = 0
            while received < 4096:
                received += len(await asyncio.wait_for(reader.read(4096), WAIT_SECONDS))
        else:
            await eventually(lambda: len(layer.credentials) > before, "upstream reached")
    finally:
        writer.close()
    return request_id


def follow_up(live: Live, caller: str, kind: str) -> httpx.Response:
    """A normal call with the same key: it gets the key's one slot only if it was freed."""
    if caller == "gemini":
        return httpx.post(f"{live.gateway.base_url}/v1beta/models/{kind}-text:generateContent",
                          json={"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]},
                          headers={"x-goog-api-key": live.key}, timeout=WAIT_SECONDS)
    return httpx.post(f"{live.gateway.base_url}/v1/chat/completions",
                      json={"model": f"{kind}-text",
                            "messages": [{"role": "user", "content": "Hi"}]},
                      headers={"authorization": f"Bearer {live.key}"}, timeout=WAIT_SECONDS)


def abandoned_record(live: Live, key_id: str, known: set[str]) -> dict[str, str]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = [r for r in usage_rows(live.gateway)
                if r["key_id"] == key_id and r["request_id"] not in known and r["status"] != "200"]
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1, rows
            return rows[0]
        time.sleep(0.2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller", CALLERS)
async def test_a_caller_gone_during_a_slow_call_cancels_it(
    live: Live, caller: str, kind: str
) -> None:
    layer = live.fakes.layers[kind]
    layer.faults.append(Fault(hold_until_gone=True))
    known = {row["request_id"] for row in usage_rows(live.gateway)}
    gone = layer.gone
    await call_then_hang_up(live, caller, kind, stream=False)
    await eventually(lambda: layer.gone > gone, "the upstream saw its connection closed")
    answered = follow_up(live, caller, kind)
    assert answered.status_code == 200, answered.text  # the slot was freed at once
    (settled,) = records_of(live.gateway, answered.headers["x-request-id"])
    record = abandoned_record(live, settled["key_id"], known)
    assert (record["status"], record["failure_class"]) == ("499", "cancelled")
    assert (record["stream"], record["dialect"]) == ("false", caller)
    assert (record["prompt_tokens"], record["output_tokens"], record["cost_usd"]) == (
        "0", "0", "0")


@pytest.mark.parametrize("firehose", [False, True], ids=["paced", "firehose"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller", CALLERS)
async def test_a_caller_gone_mid_stream_stops_an_endless_upstream(
    live: Live, caller: str, kind: str, firehose: bool
) -> None:
    """A firehose upstream (its next event always already there) is the hard case: a cancel
    that waits for the relaying task to wait on something never lands."""
    layer = live.fakes.layers[kind]
    script_endless(kind, live.fakes, firehose=firehose)
    gone = layer.gone
    request_id = await call_then_hang_up(live, caller, kind, stream=True)
    assert request_id is not None
    await eventually(lambda: layer.gone > gone, "the upstream saw its connection closed")
    answered = follow_up(live, caller, kind)
    assert answered.status_code == 200, answered.text
    (record,) = records_of(live.gateway, request_id)
    assert (record["status"], record["failure_class"]) == ("499", "cancelled")
    assert (record["stream"], record["dialect"]) == ("true", caller)
    if caller == kind:
        assert int(record["prompt_tokens"]) == PROMPT_REPORTED[kind]
