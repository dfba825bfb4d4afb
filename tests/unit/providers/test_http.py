"""HttpProvider against a real HTTP upstream on 127.0.0.1 (uvicorn + Starlette, replaying
OpenAI wire fixtures) and, for faults a live server cannot stage on demand, httpx's
MockTransport."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.contract.upstreams import served

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    Message,
    PartDelta,
    StreamStarted,
    TextPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.errors import FailureClass, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.base import CountsTokens, Target
from cometgate.providers.http import HttpProvider, TokenizingHttpProvider
from cometgate.providers.openai_upstream import http_provider
from cometgate.providers.timeouts import Timeouts

WIRE = Path(__file__).parents[2] / "wire" / "openai"
REQUEST = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
TARGET = Target(upstream_model="small-model", model_version="alias")
FAST = Timeouts(connect=2.0, first_byte=5.0, idle=5.0, total=10.0)


# --- a real upstream ---------------------------------------------------------------------------


@dataclass
class Upstream:
    url: str
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    endless_closed: asyncio.Event = field(default_factory=asyncio.Event)
    client_ports: list[int] = field(default_factory=list)


def upstream_app(upstream: Upstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        upstream.seen.append((request.url.path, dict(request.headers), body))
        assert request.client is not None
        upstream.client_ports.append(request.client.port)
        if body["model"] == "endless":
            return StreamingResponse(endless(), media_type="text/event-stream")
        if body.get("stream"):
            return StreamingResponse(fixture_in_pieces("stream_text.sse"),
                                     media_type="text/event-stream")
        return Response((WIRE / "completion_text.json").read_bytes(),
                        media_type="application/json")

    async def endless() -> AsyncIterator[bytes]:
        chunk = b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
        try:
            while True:
                yield chunk
                await asyncio.sleep(0.01)
        finally:
            upstream.endless_closed.set()

    async def tokenize(request: Request) -> Response:
        body = orjson.loads(await request.body())
        upstream.seen.append((request.url.path, dict(request.headers), body))
        return JSONResponse({"count": 7, "max_model_len": 4096, "tokens": [1, 2, 3, 4, 5, 6, 7]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/tokenize", tokenize, methods=["POST"])])


async def fixture_in_pieces(name: str) -> AsyncIterator[bytes]:
    body = (WIRE / name).read_bytes()
    for start in range(0, len(body), 37):  # cut through lines, JSON and UTF-8 alike
        yield body[start : start + 37]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(url="")  # its address is known once it is served
    async with served(upstream_app(state)) as (url,):
        state.url = f"{url}/v1"
        yield state


def provider_for(upstream: Upstream, **options: Any) -> HttpProvider:
    return http_provider("test", base_url=upstream.url + "/", api_key="sk-test",
                         options=OpenAIOptions(**options), timeouts=FAST)


async def test_generate_over_real_http(upstream: Upstream) -> None:
    provider = provider_for(upstream)
    try:
        response = await provider.generate(REQUEST, TARGET)
    finally:
        await provider.aclose()
    assert response.candidates[0].parts == (TextPart("Hello! How can I assist you today?"),)
    assert response.usage == Usage(prompt_tokens=19, output_tokens=10)
    path, headers, body = upstream.seen[0]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-test"
    assert headers["content-type"] == "application/json"
    assert body == {"model": "small-model", "messages": [{"role": "user", "content": "hi"}]}


async def test_stream_over_real_http(upstream: Upstream) -> None:
    provider = provider_for(upstream)
    try:
        events = [event async for event in provider.stream(REQUEST, TARGET)]
    finally:
        await provider.aclose()
    assert isinstance(events[0], StreamStarted)
    assert events[1:] == [
        PartDelta(TextPart("Hello")),
        PartDelta(TextPart(" wörld")),
        CandidateFinished(FinishReason.STOP),
        UsageReported(Usage(prompt_tokens=9, output_tokens=3)),
    ]
    sent = upstream.seen[0][2]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert upstream.seen[0][1]["accept"] == "text/event-stream"


async def test_connections_are_reused(upstream: Upstream) -> None:
    provider = provider_for(upstream)
    try:
        for _ in range(3):
            await provider.generate(REQUEST, TARGET)
        async for _ in provider.stream(REQUEST, TARGET):
            pass
        await provider.generate(REQUEST, TARGET)
    finally:
        await provider.aclose()
    # One after another over a keep-alive pool: every request rides the same connection.
    assert len(upstream.client_ports) == 5
    assert len(set(upstream.client_ports)) == 1


async def test_consumer_leaving_early_closes_the_upstream_response(upstream: Upstream) -> None:
    provider = provider_for(upstream)
    try:
        stream = provider.stream(REQUEST, Target("endless", "alias"))
        received = [await anext(stream) for _ in range(3)]
        assert isinstance(received[0], StreamStarted)
        assert received[1:] == [PartDelta(TextPart("x")), PartDelta(TextPart("x"))]
        await stream.aclose()
        # The server's generator ends only when it sees the client disconnect.
        await asyncio.wait_for(upstream.endless_closed.wait(), timeout=10)
    finally:
        await provider.aclose()


async def test_count_tokens_uses_the_server_root(upstream: Upstream) -> None:
    provider = provider_for(upstream, tokenize_endpoint=True)
    request = GenerateRequest(model="alias", messages=REQUEST.messages,
                              tools=(FunctionTool("f"),))
    try:
        assert isinstance(provider, CountsTokens)
        assert await provider.count_tokens(request, TARGET) == 7
    finally:
        await provider.aclose()
    path, headers, body = upstream.seen[0]
    assert path == "/tokenize"
    assert headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "small-model"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["tools"][0]["function"]["name"] == "f"


def test_counting_is_advertised_only_when_configured() -> None:
    timeouts = Timeouts()
    plain = http_provider("p", base_url="http://127.0.0.1:1/v1", options=OpenAIOptions(),
                          timeouts=timeouts)
    counting = http_provider("p", base_url="http://127.0.0.1:1/v1",
                             options=OpenAIOptions(tokenize_endpoint=True), timeouts=timeouts)
    assert not isinstance(plain, CountsTokens)
    assert isinstance(counting, TokenizingHttpProvider) and isinstance(counting, CountsTokens)


async def test_connection_refused_is_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    provider = http_provider("p", base_url=f"http://127.0.0.1:{port}/v1",
                             options=OpenAIOptions(), timeouts=FAST)
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await provider.generate(REQUEST, TARGET)
        assert caught.value.http_status == 503
        with pytest.raises(UpstreamUnavailable):
            await anext(provider.stream(REQUEST, TARGET))
    finally:
        await provider.aclose()


# --- faults through MockTransport ---------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    """A response body that yields chunks, then optionally stalls or breaks."""

    def __init__(self, chunks: list[bytes], then: str = "end") -> None:
        self.chunks = chunks
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.then == "stall":
            await asyncio.Event().wait()
        if self.then == "reset":
            raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


Handler = Callable[[httpx.Request], Any]


def mocked(handler: Handler, timeouts: Timeouts = FAST, **kwargs: Any) -> HttpProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpProvider("mock", base_url="http://upstream.test/v1", options=OpenAIOptions(),
                        timeouts=timeouts, client=client, **kwargs)


def error_response(status: int, name: str, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=(WIRE / name).read_bytes())

    return handler


@pytest.mark.parametrize(("status", "name", "failure", "http"), [
    (400, "error_context_length.json", FailureClass.CALLER_FAULT, 400),
    (401, "error_invalid_api_key.json", FailureClass.CREDENTIAL, 503),
    (429, "error_rate_limit.json", FailureClass.RATE_LIMITED, 429),
    (500, "error_server.json", FailureClass.TRANSIENT, 503),
    (503, "error_server.json", FailureClass.TRANSIENT, 503),
])
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_answers_are_classified(
    status: int, name: str, failure: FailureClass, http: int, streaming: bool
) -> None:
    provider = mocked(error_response(status, name, {"retry-after": "7"}))
    with pytest.raises(UpstreamError) as caught:
        if streaming:
            await anext(provider.stream(REQUEST, TARGET))
        else:
            await provider.generate(REQUEST, TARGET)
    error = caught.value
    assert (error.failure_class, error.http_status, error.upstream_status) == (
        failure, http, status)
    if failure is FailureClass.RATE_LIMITED:
        assert error.retry_after == 7.0


async def test_connect_error_from_transport_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamUnavailable):
        await mocked(handler).generate(REQUEST, TARGET)


async def test_transport_timeout_is_upstream_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    with pytest.raises(UpstreamTimeout) as caught:
        await mocked(handler).generate(REQUEST, TARGET)
    assert caught.value.http_status == 504


async def test_no_first_byte_in_time() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    timeouts = Timeouts(connect=1, first_byte=0.05, idle=10, total=10)
    with pytest.raises(UpstreamTimeout, match="no response from the upstream"):
        await mocked(handler, timeouts).generate(REQUEST, TARGET)
    with pytest.raises(UpstreamTimeout, match="no response from the upstream"):
        await anext(mocked(handler, timeouts).stream(REQUEST, TARGET))


async def test_total_deadline_wins_over_a_longer_first_byte_timeout() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    timeouts = Timeouts(connect=1, first_byte=10, idle=10, total=0.05)
    with pytest.raises(UpstreamTimeout, match="in total"):
        await mocked(handler, timeouts).generate(REQUEST, TARGET)


STARTED = (b'data: {"choices":[{"index":0,"delta":{"content":"Hel"},'
           b'"finish_reason":null}]}\n\n')


async def test_idle_timeout_mid_stream() -> None:
    body = Body([STARTED], then="stall")
    timeouts = Timeouts(connect=1, first_byte=10, idle=0.05, total=10)
    stream = mocked(lambda request: httpx.Response(200, stream=body), timeouts).stream(
        REQUEST, TARGET)
    assert isinstance(await anext(stream), StreamStarted)
    assert await anext(stream) == PartDelta(TextPart("Hel"))
    with pytest.raises(UpstreamTimeout, match="sent nothing"):
        await anext(stream)
    assert body.closed


async def test_idle_timeout_while_reading_a_whole_body() -> None:
    body = Body([b'{"choices":'], then="stall")
    timeouts = Timeouts(connect=1, first_byte=10, idle=0.05, total=10)
    provider = mocked(lambda request: httpx.Response(200, stream=body), timeouts)
    with pytest.raises(UpstreamTimeout, match="sent nothing"):
        await provider.generate(REQUEST, TARGET)
    assert body.closed


async def test_reset_after_first_byte_is_transient() -> None:
    body = Body([STARTED], then="reset")
    stream = mocked(lambda request: httpx.Response(200, stream=body)).stream(REQUEST, TARGET)
    events = [await anext(stream), await anext(stream)]
    assert events[1] == PartDelta(TextPart("Hel"))
    with pytest.raises(UpstreamError) as caught:
        await anext(stream)
    assert not isinstance(caught.value, UpstreamTimeout)
    assert caught.value.failure_class is FailureClass.TRANSIENT
    assert caught.value.http_status == 503
    assert body.closed


async def test_eof_without_finish_is_transient() -> None:
    body = Body([STARTED])
    stream = mocked(lambda request: httpx.Response(200, stream=body)).stream(REQUEST, TARGET)
    with pytest.raises(UpstreamError, match="closed the stream early"):
        async for _ in stream:
            pass


async def test_early_close_closes_the_mocked_response() -> None:
    body = Body([STARTED] * 3, then="stall")
    stream = mocked(lambda request: httpx.Response(200, stream=body)).stream(REQUEST, TARGET)
    await anext(stream)
    await anext(stream)
    assert not body.closed
    await stream.aclose()
    assert body.closed


async def test_target_credential_wins_and_no_key_sends_no_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=(WIRE / "completion_text.json").read_bytes())

    with_key = mocked(handler, api_key="sk-provider")
    await with_key.generate(REQUEST, Target("m", "alias", credential="sk-target"))
    await with_key.generate(REQUEST, TARGET)
    await mocked(handler).generate(REQUEST, TARGET)
    assert [r.headers.get("authorization") for r in seen] == [
        "Bearer sk-target", "Bearer sk-provider", None]
    assert str(seen[0].url) == "http://upstream.test/v1/chat/completions"


async def test_tokenize_without_a_count_is_unreadable() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json={"unexpected": True})))
    provider = TokenizingHttpProvider("t", base_url="http://upstream.test/v1",
                                      options=OpenAIOptions(tokenize_endpoint=True),
                                      timeouts=FAST, client=client)
    with pytest.raises(UpstreamError, match="no count"):
        await provider.count_tokens(REQUEST, TARGET)


async def test_aclose_closes_only_a_client_it_made() -> None:
    injected = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    provider = HttpProvider("p", base_url="http://upstream.test/v1", options=OpenAIOptions(),
                            timeouts=FAST, client=injected)
    await provider.aclose()
    assert not injected.is_closed
    await injected.aclose()
    owned = HttpProvider("p", base_url="http://upstream.test/v1", options=OpenAIOptions(),
                         timeouts=FAST)
    await owned.aclose()
    assert owned._transport._client.is_closed


@pytest.mark.parametrize("value", [0, -1.0])
def test_timeouts_must_be_positive(value: float) -> None:
    with pytest.raises(ValueError, match="idle"):
        Timeouts(idle=value)
