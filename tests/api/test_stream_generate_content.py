"""streamGenerateContent: SSE framing byte by byte, the JSON-array form, and failures before
and after the first byte."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
import pytest

from tests.api.bodies import JSON_TYPE, STREAM, WEATHER_TOOLS, error_of, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

# Only `data: <one line>` events, each closed by a blank line; nothing before, between or after.
_SSE_BODY = re.compile(rb"(?:data: [^\r\n]+(?:\r\n\r\n|\n\n))+")


def sse_chunks(content: bytes) -> list[dict[str, Any]]:
    assert _SSE_BODY.fullmatch(content), content[:300]
    events = re.split(rb"\r\n\r\n|\n\n", content)
    assert events[-1] == b""
    return [orjson.loads(event.removeprefix(b"data: ")) for event in events[:-1]]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        part.get("text", "")
        for chunk in chunks
        for candidate in chunk.get("candidates", [])
        for part in candidate["content"].get("parts", [])
    )


async def test_sse_framing_and_content(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text="One two three four five.", chunks=4,
                                  prompt_tokens=6, completion_tokens=5))
    response = await client.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in response.content and b"\n:" not in response.content
    chunks = sse_chunks(response.content)
    assert len(chunks) >= 3
    assert text_of(chunks) == "One two three four five."
    assert len({c["responseId"] for c in chunks}) == 1
    assert all(c["modelVersion"] == "smollm2-135m-instruct" and "createTime" in c
               for c in chunks)
    final = chunks[-1]
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["usageMetadata"]["promptTokenCount"] == 6
    assert final["usageMetadata"]["candidatesTokenCount"] == 5
    assert all("finishReason" not in c.get("candidates", [{}])[0] for c in chunks[:-1])
    sent = upstream.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_stream_of_tool_calls(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text=None, finish_reason="tool_calls",
                                  tool_calls=[{"name": "get_weather",
                                               "arguments": {"city": "Lima"}}]))
    body = {**text_body(), "tools": WEATHER_TOOLS}
    response = await client.post(f"{STREAM}?alt=sse", json=body)
    chunks = sse_chunks(response.content)
    calls = [part["functionCall"] for chunk in chunks for cand in chunk.get("candidates", [])
             for part in cand["content"].get("parts", []) if "functionCall" in part]
    assert calls == [{"id": "call_0", "name": "get_weather", "args": {"city": "Lima"}}]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("query", ["", "?alt=json"])
async def test_without_sse_the_stream_is_one_json_array(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, query: str
) -> None:
    upstream.replies.append(Reply(text="Array form.", chunks=2))
    response = await client.post(f"{STREAM}{query}", json=text_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    chunks = orjson.loads(response.content)
    assert isinstance(chunks, list) and len(chunks) >= 2
    assert text_of(chunks) == "Array form."
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "usageMetadata" in chunks[-1]


async def test_bad_alt_is_refused_before_the_upstream(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    response = await client.post(f"{STREAM}?alt=proto", json=text_body())
    assert response.status_code == 400
    assert error_of(response.content)["status"] == "INVALID_ARGUMENT"
    assert upstream.requests == []


async def test_failure_mid_stream_ends_with_an_error_event(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text="Partial answer here.", fail_mid_stream=True))
    response = await client.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 200  # the status was sent with the first byte
    chunks = sse_chunks(response.content)
    assert text_of(chunks[:-1]) != ""
    last = response.content.rstrip().rsplit(b"\n", 1)[-1]
    assert last.startswith(b'data: {"error":{')
    error = chunks[-1]["error"]
    assert type(error["code"]) is int and error["code"] == 503
    assert error["status"] == "UNAVAILABLE"


async def test_failure_mid_array_stream_ends_the_array_with_an_error(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(fail_mid_stream=True))
    response = await client.post(STREAM, json=text_body())
    chunks = orjson.loads(response.content)
    assert list(chunks[-1]) == ["error"] and chunks[-1]["error"]["code"] == 503


async def test_truncated_upstream_stream_is_reported_in_band(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(text="Cut off", truncate=True))
    response = await client.post(f"{STREAM}?alt=sse", json=text_body())
    chunks = sse_chunks(response.content)
    assert chunks[-1]["error"]["code"] == 503
    assert all("finishReason" not in c.get("candidates", [{}])[0] for c in chunks)


async def test_error_in_place_of_the_first_chunk_is_an_http_status(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(fail_at_start=True))
    response = await client.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON_TYPE
    assert error_of(response.content)["message"] == "fake upstream refused"


async def test_rate_limit_before_the_stream_is_429_with_retry_info(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=429, error_type="requests",
                                  error_code="rate_limit_exceeded",
                                  headers={"retry-after": "7"}))
    response = await client.post(f"{STREAM}?alt=sse", json=text_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    error = error_of(response.content)
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in (
        error["details"]
    )


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("query", ["?alt=sse", ""])
async def test_upstream_server_errors_become_503_unavailable(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, status: int, query: str
) -> None:
    upstream.replies.append(Reply(status=status, error_type="server_error"))
    response = await client.post(f"{STREAM}{query}", json=text_body())
    assert response.status_code == 503
    assert response.headers["content-type"] == JSON_TYPE
    error = error_of(response.content)
    # 503 tells the caller when to come back, in the header and as google.rpc.RetryInfo.
    assert error == {"code": 503, "message": error["message"], "status": "UNAVAILABLE",
                     "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                  "retryDelay": "2s"}]}
    assert response.headers["retry-after"] == "2"


async def test_generate_content_maps_upstream_failures_too(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=429, error_type="requests",
                                  headers={"retry-after-ms": "1500"}))
    upstream.replies.append(Reply(status=500, error_type="server_error"))
    upstream.replies.append(Reply(status=400, error_type="invalid_request_error",
                                  error_code="context_length_exceeded"))
    limited = await client.post("/v1beta/models/smollm2-135m-instruct:generateContent",
                                json=text_body())
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    # Whole seconds, rounded up, and the same in the header and in RetryInfo.
    assert error_of(limited.content)["details"][0]["retryDelay"] == "2s"
    broken = await client.post("/v1beta/models/smollm2-135m-instruct:generateContent",
                               json=text_body())
    assert broken.status_code == 503
    refused = await client.post("/v1beta/models/smollm2-135m-instruct:generateContent",
                                json=text_body())
    assert refused.status_code == 400
    # context_length_exceeded, in Google's words (the prompt counts 11: no count to give).
    assert error_of(refused.content)["message"] == (
        "The input token count exceeds the maximum number of tokens allowed (8192).")
