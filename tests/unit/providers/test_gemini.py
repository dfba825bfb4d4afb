"""GeminiProvider against the fake Gemini upstream served by uvicorn on 127.0.0.1: bytes
forwarded unchanged both ways, the model and key rewritten, every failure classified."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest
from tests.contract.upstreams import served
from tests.fakes.gemini_upstream import (
    FakeGeminiUpstream,
    Reply,
    error_info,
    google_error,
    quota_failure,
    retry_info,
)

from cometgate.canonical import FunctionTool, GenerateRequest, Message, TextPart, Usage
from cometgate.dialects.gemini.upstream_errors import JsonArrayElements, stream_error_event
from cometgate.errors import FailureClass, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from cometgate.providers.base import RawCall, RawChunk, Target
from cometgate.providers.gemini import GeminiProvider
from cometgate.providers.timeouts import Timeouts

FAST = Timeouts(connect=2.0, first_byte=5.0, idle=5.0, total=10.0)
TARGET = Target(upstream_model="gemini-up", model_version="alias")
# Odd spacing, snake_case and a field no version of the API has: all forwarded as they are.
BODY = (b'{"contents": [{"parts":[{"text":"hi"}],"role":"user"}],\n'
        b' "generationConfig":{"thinkingConfig":{"thinking_budget":1024}},'
        b' "someFutureField": {"x": [1, 2.50]}}')
UNARY = RawCall(BODY, "v1beta", "generateContent")
SSE = RawCall(BODY, "v1beta", "streamGenerateContent", "sse")


class Server:
    def __init__(self, fake: FakeGeminiUpstream, url: str) -> None:
        self.fake = fake
        self.url = url

    def provider(self, *, prefix: str = "", api_key: str | None = "gw-key",
                 timeouts: Timeouts = FAST) -> GeminiProvider:
        return GeminiProvider("gemini", base_url=self.url + prefix, api_key=api_key,
                              timeouts=timeouts)

    def script(self, *replies: Reply) -> None:
        self.fake.replies.extend(replies)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = FakeGeminiUpstream()
    async with served(fake.app) as (url,):
        yield Server(fake, url)
        fake.resume.set()  # let any held handler finish so the server can stop


async def collect(provider: GeminiProvider, call: RawCall,
                  target: Target = TARGET) -> list[RawChunk]:
    try:
        return [chunk async for chunk in provider.forward_stream(call, target)]
    finally:
        await provider.aclose()


def as_caller_sees(data: bytes) -> bytes:
    """The upstream's bytes with the model named as the caller asked for it (TARGET's alias):
    the one change the pass-through makes to an answer."""
    return (data.replace(b'"modelVersion":"gemini-2.5-flash"', b'"modelVersion":"alias"')
            .replace(b'"modelVersion": "gemini-2.5-flash"', b'"modelVersion": "alias"'))


# --- the request ----------------------------------------------------------------------------


async def test_unary_forwards_bytes_both_ways(server: Server) -> None:
    provider = server.provider()
    try:
        answer = await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
    seen = server.fake.requests[0]
    assert (seen.path, seen.query) == ("/v1beta/models/gemini-up:generateContent", "")
    assert seen.body == BODY
    assert seen.headers["x-goog-api-key"] == "gw-key"
    assert seen.headers["content-type"] == "application/json"
    assert answer.content_type == "application/json; charset=UTF-8"
    assert answer.body.startswith(b'{\n  "candidates": [')  # Google's pretty printing kept
    assert b"Hello from the fake Gemini upstream." in answer.body
    assert b'"modelVersion": "alias",' in answer.body and b"gemini-2.5-flash" not in answer.body
    assert answer.usage == Usage(prompt_tokens=8, output_tokens=6)


@pytest.mark.parametrize(("version", "prefix", "path"), [
    ("v1", "", "/v1/models/gemini-up:generateContent"),
    ("v1beta", "", "/v1beta/models/gemini-up:generateContent"),
    ("", "", "/models/gemini-up:generateContent"),
    ("v1beta", "/gw/", "/gw/v1beta/models/gemini-up:generateContent"),
    ("", "/gw", "/gw/models/gemini-up:generateContent"),
])
async def test_the_callers_version_is_kept(server: Server, version: str, prefix: str,
                                           path: str) -> None:
    provider = server.provider(prefix=prefix)
    try:
        await provider.forward(RawCall(BODY, version, "generateContent"), TARGET)
    finally:
        await provider.aclose()
    assert server.fake.requests[0].path == path


async def test_model_names_with_their_collection_are_kept(server: Server) -> None:
    provider = server.provider()
    try:
        await provider.forward(UNARY, Target("tunedModels/mine-1.5", "alias"))
        await provider.forward(UNARY, Target("models/gemini-2.5-flash", "alias"))
    finally:
        await provider.aclose()
    assert [seen.path for seen in server.fake.requests] == [
        "/v1beta/tunedModels/mine-1.5:generateContent",
        "/v1beta/models/gemini-2.5-flash:generateContent"]


async def test_the_key_is_the_gateways(server: Server) -> None:
    provider = server.provider(api_key="gw-key")
    keyless = server.provider(api_key=None)
    try:
        await provider.forward(UNARY, Target("m", "alias", credential="routed-key"))
        await provider.forward(UNARY, TARGET)
        await keyless.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
        await keyless.aclose()
    keys = [seen.headers.get("x-goog-api-key") for seen in server.fake.requests]
    assert keys == ["routed-key", "gw-key", None]
    assert all("authorization" not in seen.headers for seen in server.fake.requests)
    assert all(seen.query == "" for seen in server.fake.requests)  # never a ?key=


async def test_count_tokens_is_a_forward(server: Server) -> None:
    provider = server.provider()
    try:
        answer = await provider.forward(
            RawCall(b'{"contents":[{"parts":[{"text":"hello"}]}]}', "v1", "countTokens"),
            TARGET)
    finally:
        await provider.aclose()
    assert server.fake.requests[0].path == "/v1/models/gemini-up:countTokens"
    assert orjson.loads(answer.body) == {  # the fake counts one token per word
        "totalTokens": 1, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1}]}
    assert answer.usage is None


async def test_forward_count_is_the_callers_own_request(server: Server) -> None:
    provider = server.provider()
    body = b'{"contents":[{"parts":[{"text":"three words here"}]}]}'
    try:
        answer = await provider.forward_count(RawCall(body, "v1", "countTokens"), TARGET)
    finally:
        await provider.aclose()
    seen = server.fake.requests[0]
    assert (seen.path, seen.body) == ("/v1/models/gemini-up:countTokens", body)
    assert orjson.loads(answer.body)["totalTokens"] == 3


async def test_a_translated_count_sends_the_whole_generate_request(server: Server) -> None:
    request = GenerateRequest(
        model="alias", system=(TextPart("be brief"),),
        messages=(Message("user", (TextPart("three words here"),)),),
        tools=(FunctionTool("lookup", "finds a thing"),))
    provider = server.provider()
    try:
        assert await provider.count_tokens(request, TARGET) == 2 + 3 + 1 + 3
    finally:
        await provider.aclose()
    seen = server.fake.requests[0]
    assert seen.path == "/v1beta/models/gemini-up:countTokens"
    assert seen.headers["x-goog-api-key"] == "gw-key"
    assert orjson.loads(seen.body) == {"generateContentRequest": {
        "model": "models/gemini-up",
        "contents": [{"role": "user", "parts": [{"text": "three words here"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"functionDeclarations": [{"name": "lookup",
                                             "description": "finds a thing"}]}]}}


@pytest.mark.parametrize(("reply", "failure"), [
    (Reply(raw_body=b'{"totalTokens": "many"}'), "no totalTokens"),
    (Reply(status=400, error=google_error(400, "INVALID_ARGUMENT", "bad")), "bad"),
])
async def test_a_translated_count_that_fails(server: Server, reply: Reply, failure: str) -> None:
    server.script(reply)
    provider = server.provider()
    request = GenerateRequest(model="alias", messages=(Message("user", (TextPart("hi"),)),))
    try:
        with pytest.raises(UpstreamError, match=failure):
            await provider.count_tokens(request, TARGET)
    finally:
        await provider.aclose()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"modelVersion": "gemini-up"}'])
async def test_a_success_that_is_no_answer_is_a_transient_fault(
    server: Server, body: bytes
) -> None:
    """Not relayed: another candidate may answer (the pipeline fails over on it)."""
    server.script(Reply(raw_body=body))
    provider = server.provider()
    try:
        with pytest.raises(UpstreamError) as caught:
            await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
    assert (caught.value.failure_class, caught.value.http_status) == (
        FailureClass.TRANSIENT, 502)


async def test_a_blocked_prompt_answer_is_relayed(server: Server) -> None:
    blocked = b'{"promptFeedback": {"blockReason": "SAFETY"}}'
    server.script(Reply(raw_body=blocked))
    provider = server.provider()
    try:
        answer = await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
    assert (answer.body, answer.usage) == (blocked, None)


@pytest.mark.parametrize(("alt", "body"), [
    ("sse", b"data: <html>oops</html>\r\n\r\n"), (None, b"<html>oops</html>"),
    (None, b"[7]"), (None, b"[")])
async def test_a_stream_whose_first_event_is_no_event_raises_before_yielding(
    server: Server, alt: str | None, body: bytes
) -> None:
    server.script(Reply(raw_body=body))
    with pytest.raises(UpstreamError) as caught:
        await collect(server.provider(), RawCall(BODY, "v1", "streamGenerateContent", alt))
    assert (caught.value.failure_class, caught.value.http_status) == (
        FailureClass.TRANSIENT, 502)


@pytest.mark.parametrize(("version", "method"), [
    ("v1/../admin", "generateContent"), ("v1", "generate?x"), ("v1", ""), ("v 1", "m")])
async def test_path_syntax_is_refused(server: Server, version: str, method: str) -> None:
    provider = server.provider()
    try:
        with pytest.raises(ValueError):
            await provider.forward(RawCall(b"{}", version, method), TARGET)
    finally:
        await provider.aclose()
    assert server.fake.requests == []


# --- SSE streams ----------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [b"\r\n\r\n", b"\n\n", b"\r\r"])
async def test_sse_one_chunk_per_event_bytes_identical(server: Server,
                                                       separator: bytes) -> None:
    server.script(Reply(separator=separator))
    chunks = await collect(server.provider(), SSE)
    seen = server.fake.requests[0]
    assert (seen.path, seen.query) == ("/v1beta/models/gemini-up:streamGenerateContent",
                                       "alt=sse")
    assert seen.body == BODY
    events = server.fake.sent[0]
    assert len(events) == 3
    assert [chunk.data for chunk in chunks] == [as_caller_sees(event) for event in events]
    assert all(b'"modelVersion":"alias"' in chunk.data for chunk in chunks)
    assert all(event.endswith(separator) for event in events)
    assert [chunk.usage for chunk in chunks] == [
        Usage(prompt_tokens=8, output_tokens=2), Usage(prompt_tokens=8, output_tokens=4),
        Usage(prompt_tokens=8, output_tokens=6)]
    assert b'"finishReason":"STOP"' in chunks[-1].data
    assert all(stream_error_event(chunk.data) is None for chunk in chunks)


@pytest.mark.parametrize("piece_size", [1, 5, 64])
async def test_sse_events_cut_by_the_network_come_out_whole(server: Server,
                                                            piece_size: int) -> None:
    server.script(Reply(piece_size=piece_size, separator=b"\r\n\r\n"))
    chunks = await collect(server.provider(), SSE)
    body = b"".join(server.fake.sent[0])
    events = [part + b"\r\n\r\n" for part in body.split(b"\r\n\r\n")[:-1]]
    assert [chunk.data for chunk in chunks] == [as_caller_sees(event) for event in events]
    assert chunks[-1].usage == Usage(prompt_tokens=8, output_tokens=6)


async def test_an_event_is_yielded_before_the_next_one_exists(server: Server) -> None:
    server.script(Reply(pause_after=1))
    provider = server.provider()
    stream = provider.forward_stream(SSE, TARGET)
    try:
        first = await anext(stream)  # the upstream is now waiting for `resume`
        assert first.data == as_caller_sees(server.fake.sent[0][0])
        assert len(server.fake.sent[0]) == 1
        server.fake.resume.set()
        rest = [chunk async for chunk in stream]
    finally:
        await stream.aclose()
        await provider.aclose()
    assert len(rest) == 2


async def test_a_mid_stream_error_event_is_forwarded_and_reported(server: Server) -> None:
    error = google_error(503, "UNAVAILABLE", "The model is overloaded.")
    server.script(Reply(fail_mid_stream=error))
    chunks = await collect(server.provider(), SSE)
    assert [chunk.data for chunk in chunks] == [as_caller_sees(e) for e in server.fake.sent[0]]
    assert stream_error_event(chunks[0].data) is None
    assert chunks[1].data.startswith(b'data: {"error":{"code":503')
    reported = stream_error_event(chunks[1].data)
    assert reported is not None
    assert (reported.failure_class, reported.upstream_status) == (FailureClass.TRANSIENT, 503)


# --- JSON-array streams ---------------------------------------------------------------------


@pytest.mark.parametrize(("alt", "query"), [(None, ""), ("json", "alt=json")])
async def test_json_array_stream(server: Server, alt: str | None, query: str) -> None:
    server.script(Reply(piece_size=16))
    chunks = await collect(server.provider(),
                           RawCall(BODY, "v1", "streamGenerateContent", alt))
    assert server.fake.requests[0].query == query
    body = b"".join(server.fake.sent[0])
    assert b"".join(chunk.data for chunk in chunks) == as_caller_sees(body)
    # One chunk per element, as soon as it is complete, then the closing bracket.
    assert len(chunks) == 4 and chunks[-1].data == b"]"
    assert all(b'"modelVersion": "alias"' in chunk.data for chunk in chunks[:-1])
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert usages == [Usage(prompt_tokens=8, output_tokens=n) for n in (2, 4, 6)]


async def test_json_array_stream_with_an_error_element(server: Server) -> None:
    server.script(Reply(piece_size=7, fail_mid_stream=google_error(
        429, "RESOURCE_EXHAUSTED", "quota", [retry_info("30s")])))
    chunks = await collect(server.provider(), RawCall(BODY, "v1", "streamGenerateContent"))
    body = b"".join(chunk.data for chunk in chunks)
    assert body == as_caller_sees(b"".join(server.fake.sent[0]))
    assert chunks[-1].usage is None  # the error element reports no usage
    # Reported on the chunk that carries the error element; the closing bracket comes last.
    assert [chunk.error is not None for chunk in chunks] == [False, True, False]
    elements = JsonArrayElements().feed(body)
    errors = [e for e in map(stream_error_event, elements) if e is not None]
    assert len(errors) == 1
    assert errors[0].failure_class is FailureClass.RATE_LIMITED
    assert errors[0].retry_after == 30.0


# --- error answers --------------------------------------------------------------------------

ERRORS: list[tuple[str, Reply, FailureClass, int]] = [
    ("bad argument", Reply(status=400, error=google_error(
        400, "INVALID_ARGUMENT", 'Unknown name "someFutureField": Cannot find field.')),
     FailureClass.CALLER_FAULT, 400),
    ("bad key", Reply(status=400, error=google_error(
        400, "INVALID_ARGUMENT", "API key not valid.", [error_info("API_KEY_INVALID")])),
     FailureClass.CREDENTIAL, 503),
    ("no permission", Reply(status=403, error=google_error(403, "PERMISSION_DENIED", "no")),
     FailureClass.CALLER_FAULT, 403),
    ("service disabled", Reply(status=403, error=google_error(
        403, "PERMISSION_DENIED", "disabled", [error_info("SERVICE_DISABLED")])),
     FailureClass.CREDENTIAL, 503),
    ("rate limited", Reply(status=429, error=google_error(
        429, "RESOURCE_EXHAUSTED", "slow down", [retry_info("43s")])),
     FailureClass.RATE_LIMITED, 429),
    ("daily quota", Reply(status=429, error=google_error(
        429, "RESOURCE_EXHAUSTED", "quota",
        [quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
         retry_info("43s")])),
     FailureClass.QUOTA, 503),
    ("unknown model", Reply(status=404, error=google_error(
        404, "NOT_FOUND", "models/gemini-up is not found for API version v1beta")),
     FailureClass.UNKNOWN, 502),
    ("overloaded", Reply(status=503, error=google_error(503, "UNAVAILABLE", "overloaded")),
     FailureClass.TRANSIENT, 503),
    ("html 502", Reply(status=502, raw_error=b"<html><title>502 Bad Gateway</title></html>"),
     FailureClass.TRANSIENT, 503),
]


@pytest.mark.parametrize(("reply", "failure", "http"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_answers_are_classified(server: Server, reply: Reply,
                                            failure: FailureClass, http: int,
                                            streaming: bool) -> None:
    server.script(reply)
    provider = server.provider()
    try:
        with pytest.raises(UpstreamError) as caught:
            if streaming:  # raised by the first pull, before any byte reaches the caller
                await anext(provider.forward_stream(SSE, TARGET))
            else:
                await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
    error = caught.value
    assert (error.failure_class, error.http_status, error.upstream_status) == (
        failure, http, reply.status)
    if failure is FailureClass.RATE_LIMITED:
        assert error.retry_after == 43.0
    if failure is FailureClass.CALLER_FAULT:
        assert reply.error is not None and error.message == reply.error["error"]["message"]
        assert error.status == reply.error["error"]["status"]


async def test_retry_after_header_without_retry_info(server: Server) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "12"},
                        error=google_error(429, "RESOURCE_EXHAUSTED", "slow down")))
    provider = server.provider()
    try:
        with pytest.raises(UpstreamError) as caught:
            await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()
    assert caught.value.retry_after == 12.0


# --- transport failures ---------------------------------------------------------------------


async def test_connection_refused_is_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    provider = GeminiProvider("gemini", base_url=f"http://127.0.0.1:{port}", api_key="k",
                              timeouts=FAST)
    try:
        with pytest.raises(UpstreamUnavailable):
            await provider.forward(UNARY, TARGET)
        with pytest.raises(UpstreamUnavailable):
            await anext(provider.forward_stream(SSE, TARGET))
    finally:
        await provider.aclose()


@pytest.mark.parametrize("streaming", [False, True])
async def test_timeout_before_the_first_byte(server: Server, streaming: bool) -> None:
    server.script(Reply(hold_headers=True))
    provider = server.provider(timeouts=Timeouts(connect=2, first_byte=0.05, idle=5, total=10))
    try:
        with pytest.raises(UpstreamTimeout, match="no response from the upstream"):
            if streaming:
                await anext(provider.forward_stream(SSE, TARGET))
            else:
                await provider.forward(UNARY, TARGET)
    finally:
        await provider.aclose()


async def test_idle_timeout_mid_stream(server: Server) -> None:
    server.script(Reply(pause_after=1))
    provider = server.provider(timeouts=Timeouts(connect=2, first_byte=5, idle=0.05, total=10))
    stream = provider.forward_stream(SSE, TARGET)
    try:
        first = await anext(stream)
        assert first.data == as_caller_sees(server.fake.sent[0][0])
        with pytest.raises(UpstreamTimeout, match="sent nothing"):
            await anext(stream)
    finally:
        await stream.aclose()
        await provider.aclose()


async def test_reset_after_the_first_byte_is_transient(server: Server) -> None:
    server.script(Reply(reset_after_first=True))
    provider = server.provider()
    stream = provider.forward_stream(SSE, TARGET)
    try:
        first = await anext(stream)
        assert first.usage == Usage(prompt_tokens=8, output_tokens=2)
        with pytest.raises(UpstreamError) as caught:
            await anext(stream)
    finally:
        await stream.aclose()
        await provider.aclose()
    assert not isinstance(caught.value, UpstreamTimeout)
    assert caught.value.failure_class is FailureClass.TRANSIENT


async def test_leaving_early_closes_the_upstream_response(server: Server) -> None:
    server.script(Reply(endless=True))
    provider = server.provider()
    stream = provider.forward_stream(SSE, TARGET)
    try:
        received = [await anext(stream) for _ in range(3)]
        assert [chunk.data for chunk in received] == [
            as_caller_sees(event) for event in server.fake.sent[0][:3]]
        assert not server.fake.stream_closed.is_set()
        await stream.aclose()
        # The fake's generator ends only when it sees the client disconnect.
        await asyncio.wait_for(server.fake.stream_closed.wait(), timeout=10)
    finally:
        await provider.aclose()
