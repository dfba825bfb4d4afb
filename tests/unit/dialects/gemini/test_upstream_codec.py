"""GeminiCodec: its paths and headers, and the whole codec driven by the real HttpProvider
against the fake Gemini upstream served by uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from tests.contract.upstreams import served
from tests.fakes.gemini_upstream import FakeGeminiUpstream, Reply, google_error, retry_info

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    FunctionTool,
    GenerateRequest,
    Message,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolResultPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.upstream_codec import GeminiCodec
from cometgate.dialects.gemini.upstream_request import encode_request
from cometgate.dialects.upstream_codec import OutboundCodec
from cometgate.errors import FailureClass, UpstreamError
from cometgate.providers.base import Target
from cometgate.providers.http import HttpProvider
from cometgate.providers.timeouts import Timeouts

FAST = Timeouts(connect=2.0, first_byte=5.0, idle=5.0, total=10.0)
TARGET = Target(upstream_model="gemini-up", model_version="alias", credential="gw-key")
WEATHER = FunctionTool("get_weather", "Weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
REQUEST = GenerateRequest(
    model="alias",
    messages=(
        Message("user", (TextPart("Weather in Paris?"),)),
        Message("assistant", (ReasoningPart("need a tool", b"\x01\x02"),
                              ToolCallPart("get_weather", {"city": "Paris"}, "call_1", b"s"))),
        Message("user", (ToolResultPart("get_weather", {"temp": 20}, "call_1"),)),
    ),
    system=(TextPart("Be brief."),),
    tools=(WEATHER,),
    thinking=ThinkingConfig(include_thoughts=True),
)


# --- the codec alone ----------------------------------------------------------------------


@pytest.mark.parametrize(("version", "model", "stream", "path"), [
    ("v1beta", "gemini-2.5-flash", False, "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("v1beta", "gemini-2.5-flash", True,
     "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
    ("v1", "models/gemini-2.5-pro", False, "/v1/models/gemini-2.5-pro:generateContent"),
    ("v1beta", "tunedModels/my-model-7", True,
     "/v1beta/tunedModels/my-model-7:streamGenerateContent?alt=sse"),
    ("", "gemini-x", False, "/models/gemini-x:generateContent"),
    ("v1beta", "odd?name#x", False, "/v1beta/models/odd%3Fname%23x:generateContent"),
    ("v1beta", "../../admin", False, "/v1beta/models/%2E%2E/%2E%2E/admin:generateContent"),
])
def test_paths(version: str, model: str, stream: bool, path: str) -> None:
    assert GeminiCodec(version).path(model, stream=stream) == path


def test_the_default_version_is_v1beta() -> None:
    assert GeminiCodec().path("m", stream=False) == "/v1beta/models/m:generateContent"


@pytest.mark.parametrize("version", ["v1/../x", "v1beta?", "v 1"])
def test_a_version_is_one_plain_path_segment(version: str) -> None:
    with pytest.raises(ValueError):
        GeminiCodec(version)


def test_headers() -> None:
    codec = GeminiCodec()
    assert codec.headers("k-1", stream=False) == {"content-type": "application/json",
                                                  "x-goog-api-key": "k-1"}
    assert codec.headers(None, stream=True) == {"content-type": "application/json"}


def test_it_is_an_outbound_codec_that_delegates() -> None:
    codec: OutboundCodec = GeminiCodec()
    assert codec.encode_request(REQUEST, "m", stream=True) == encode_request(
        REQUEST, "m", stream=True)
    vouched = GeminiCodec(vouch_unsigned_calls=True).encode_request(
        GenerateRequest("a", (Message("assistant", (ToolCallPart("f", {}),)),)), "m",
        stream=False)
    assert "thoughtSignature" in vouched.body["contents"][0]["parts"][0]
    error = codec.classify_error(503, {}, orjson.dumps(
        google_error(503, "UNAVAILABLE", "The model is overloaded.")))
    assert error.failure_class is FailureClass.TRANSIENT


# --- over HTTP ------------------------------------------------------------------------------


class Server:
    def __init__(self, fake: FakeGeminiUpstream, url: str) -> None:
        self.fake = fake
        self.url = url


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    fake = FakeGeminiUpstream()
    async with served(fake.app) as (url,):
        yield Server(fake, url)
        fake.resume.set()


@pytest.fixture
async def provider(server: Server) -> AsyncIterator[HttpProvider]:
    provider = HttpProvider("gemini", base_url=server.url + "/", codec=GeminiCodec(),
                            timeouts=FAST)
    yield provider
    await provider.aclose()


async def collect(provider: HttpProvider) -> list[StreamEvent]:
    return [event async for event in provider.stream(REQUEST, TARGET)]


async def test_generate(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(text="20 degrees.", prompt_tokens=30,
                                     candidates_tokens=4, thoughts_tokens=12, cached_tokens=16))
    response = await provider.generate(REQUEST, TARGET)
    assert response.candidates[0].parts == (TextPart("20 degrees."),)
    assert response.candidates[0].finish_reason is FinishReason.STOP
    assert response.usage == Usage(prompt_tokens=30, output_tokens=4, thoughts_tokens=12,
                                   cached_tokens=16)
    assert (response.model_version, response.response_id) == ("alias", "fakeResponseId0")
    assert response.dropped == ()
    seen = server.fake.requests[0]
    assert (seen.method, seen.path, seen.query) == (
        "POST", "/v1beta/models/gemini-up:generateContent", "")
    assert seen.headers["x-goog-api-key"] == "gw-key"
    assert seen.headers["content-type"] == "application/json"
    # What arrived upstream is a Gemini request meaning exactly what was asked.
    assert decode_generate_request(seen.body, "alias") == REQUEST


async def test_generate_reads_function_calls(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(raw_body=orjson.dumps({
        "candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
             "thoughtSignature": "AQ=="},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
        ], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 10,
                          "totalTokenCount": 22},
        "modelVersion": "gemini-2.5-flash", "responseId": "r-calls",
    }, option=orjson.OPT_INDENT_2)))
    response = await provider.generate(REQUEST, TARGET)
    calls = response.candidates[0].parts
    assert all(isinstance(call, ToolCallPart) for call in calls)
    assert [(c.arguments, c.signature) for c in calls if isinstance(c, ToolCallPart)] == [
        ({"city": "Rome"}, b"\x01"), ({"city": "Oslo"}, None)]
    assert len({c.call_id for c in calls if isinstance(c, ToolCallPart)}) == 2


async def test_stream(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(text="It is 20 degrees.", chunks=3, prompt_tokens=30,
                                     candidates_tokens=6, piece_size=5))
    events = await collect(provider)
    seen = server.fake.requests[0]
    assert (seen.path, seen.query) == ("/v1beta/models/gemini-up:streamGenerateContent",
                                       "alt=sse")
    assert decode_generate_request(seen.body, "alias") == REQUEST
    assert isinstance(events[0], StreamStarted)
    assert events[0].response_id == "fakeResponseId0"
    deltas = [e.part for e in events if isinstance(e, PartDelta)]
    assert "".join(p.text for p in deltas if isinstance(p, TextPart)) == "It is 20 degrees."
    assert len(deltas) == 3
    assert events[-2:] == [CandidateFinished(FinishReason.STOP),
                           UsageReported(Usage(prompt_tokens=30, output_tokens=6))]


async def test_an_error_event_mid_stream(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(fail_mid_stream=google_error(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later.")))
    received: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as caught:
        async for event in provider.stream(REQUEST, TARGET):
            received.append(event)
    assert [type(e) for e in received] == [StreamStarted, PartDelta]
    assert caught.value.failure_class is FailureClass.TRANSIENT


async def test_a_stream_cut_off(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(reset_after_first=True))
    with pytest.raises(UpstreamError) as caught:
        await collect(provider)
    assert caught.value.failure_class is FailureClass.TRANSIENT


@pytest.mark.parametrize("stream", [False, True])
async def test_error_statuses_are_classified(server: Server, provider: HttpProvider,
                                             stream: bool) -> None:
    server.fake.replies.append(Reply(status=429, error=google_error(
        429, "RESOURCE_EXHAUSTED", "Resource has been exhausted.", [retry_info("7s")])))
    with pytest.raises(UpstreamError) as caught:
        if stream:
            await collect(provider)
        else:
            await provider.generate(REQUEST, TARGET)
    assert caught.value.failure_class is FailureClass.RATE_LIMITED
    assert caught.value.retry_after == 7.0


async def test_a_rejected_request_keeps_googles_answer(server: Server,
                                                       provider: HttpProvider) -> None:
    error = google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    server.fake.replies.append(Reply(status=400, error=error))
    with pytest.raises(UpstreamError) as caught:
        await provider.generate(REQUEST, TARGET)
    assert caught.value.failure_class is FailureClass.CALLER_FAULT
    assert caught.value.native_body is not None
    assert orjson.loads(caught.value.native_body[1]) == error


async def test_an_unreadable_answer(server: Server, provider: HttpProvider) -> None:
    server.fake.replies.append(Reply(raw_body=b"<html>oops</html>"))
    with pytest.raises(UpstreamError) as caught:
        await provider.generate(REQUEST, TARGET)
    assert (caught.value.failure_class, caught.value.http_status) == (FailureClass.TRANSIENT, 502)
