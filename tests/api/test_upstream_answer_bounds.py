"""An upstream's answer is bounded while it is read: a non-streamed answer beyond
max_answer_bytes and a stream event beyond max_event_bytes end the attempt with a 502 (or,
once a stream has begun, the dialect's error event)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from cometgate.app import create_app
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.registry import openai_options
from cometgate.providers.timeouts import Timeouts
from cometgate.settings import OpenAIProviderSettings, Settings
from tests.api.bodies import GENERATE, SMOL, STREAM, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply
from tests.unit.providers.raw_upstream import (
    CHUNKED_HEAD,
    Peer,
    RawUpstream,
    chunk,
    raw_upstream,
)

ANSWER_LIMIT = 4096
EVENT_LIMIT = 2048
TOO_LARGE = f"The upstream's answer exceeded {ANSWER_LIMIT} bytes."
EVENT_TOO_LARGE = f"One event of the upstream's stream exceeded {EVENT_LIMIT} bytes."


@pytest.fixture
async def http(
    settings: Settings, upstream: FakeOpenAIUpstream, api_key: str,
) -> AsyncIterator[httpx.AsyncClient]:
    spec = settings.provider("fake")
    assert isinstance(spec, OpenAIProviderSettings)
    provider = http_provider(
        "fake", base_url=spec.base_url, options=openai_options(spec),
        timeouts=Timeouts(max_answer_bytes=ANSWER_LIMIT, max_event_bytes=EVENT_LIMIT),
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream.app)))
    app = create_app(settings, providers={"fake": provider})
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway",
                                     headers={"x-goog-api-key": api_key}) as client:
            yield client


async def test_an_oversized_answer_is_502_for_a_translated_call(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    upstream.replies.append(Reply(text="x" * 10_000))
    response = await http.post(GENERATE, json=text_body())
    assert response.status_code == 502
    assert response.json() == {"error": {"code": 502, "message": TOO_LARGE,
                                          "status": "UNAVAILABLE"}}


async def test_an_oversized_answer_is_502_for_a_pass_through_call(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    upstream.replies.append(Reply(text="x" * 10_000))
    response = await http.post("/v1/chat/completions", json={
        "model": SMOL, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 502
    assert response.json()["error"]["message"] == TOO_LARGE


async def test_an_answer_within_the_limit_is_served(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    upstream.replies.append(Reply(text="x" * 3000))
    response = await http.post(GENERATE, json=text_body())
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "x" * 3000


async def test_an_oversized_first_event_is_502_before_the_stream_begins(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    upstream.replies.append(Reply(text="y" * 5000, chunks=1))
    response = await http.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 502
    assert response.json()["error"]["message"] == EVENT_TOO_LARGE


def openai_frame(delta: dict[str, object]) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
             "model": SMOL, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def endless_event_after_one(peer: Peer) -> None:
    """Over a real socket: one good event, then one that never ends (bounded here at 1 MiB,
    after which the test's gateway must long have hung up)."""
    await peer.read_request()
    await peer.send(CHUNKED_HEAD + chunk(openai_frame({"role": "assistant", "content": "small"})))
    await asyncio.sleep(0.05)
    await peer.send(chunk(b'data: {"id":"chatcmpl-1","choices":[{"delta":{"content":"'))
    with contextlib.suppress(ConnectionError):
        for _ in range(256):
            await peer.send(chunk(b"z" * 4096))


@pytest.fixture
async def over_sockets(settings: Settings, api_key: str) -> AsyncIterator[
        tuple[httpx.AsyncClient, RawUpstream]]:
    async with raw_upstream(endless_event_after_one) as upstream:
        provider = http_provider(
            "fake", base_url=upstream.url("/v1"), options=OpenAIOptions(),
            timeouts=Timeouts(max_event_bytes=EVENT_LIMIT))
        app = create_app(settings, providers={"fake": provider})
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://gateway",
                                         headers={"x-goog-api-key": api_key}) as client:
                yield client, upstream


async def test_an_endless_event_mid_stream_ends_it_with_the_dialects_error_event(
    over_sockets: tuple[httpx.AsyncClient, RawUpstream],
) -> None:
    http, upstream = over_sockets
    response = await http.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 200
    events = [orjson.loads(e.removeprefix(b"data: "))
              for e in response.content.split(b"\r\n\r\n") if e]
    assert events[0]["candidates"][0]["content"]["parts"][0]["text"] == "small"
    assert events[-1] == {"error": {"code": 502, "message": EVENT_TOO_LARGE,
                                    "status": "UNAVAILABLE"}}
    # The gateway closed the upstream connection rather than read the rest.
    (peer,) = upstream.peers
    assert await asyncio.wait_for(peer.reader.read(), timeout=5) == b""


async def test_many_events_beyond_the_event_limit_in_all_are_served(
    http: httpx.AsyncClient, upstream: FakeOpenAIUpstream,
) -> None:
    upstream.replies.append(Reply(text="w" * 12_000, chunks=12))
    response = await http.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 200
    assert b'"error"' not in response.content
    assert response.content.count(b"w" * 1000) == 12
