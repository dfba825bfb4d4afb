"""The OpenAI dialect's entrance through the app: a model on an OpenAI-compatible upstream is
reached by pass-through (the caller's request as it is, the model rewritten), with the same
keys, records and errors as every dialect — the latter in OpenAI's envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from tests.api.conftest import AppWithRecords, OpenAppWithRecords
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

MODEL = "smollm2-135m-instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
async def gateway(open_app: OpenAppWithRecords, api_key: str) -> AsyncIterator[AppWithRecords]:
    async with open_app({"authorization": f"Bearer {api_key}"}) as opened:
        yield opened


def frames(body: bytes) -> list[bytes]:
    return [f.removeprefix(b"data: ") for f in body.split(b"\n\n") if f]


async def test_a_completion_is_the_upstreams_answer_with_one_record(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/chat/completions", json={**CHAT, "seed": 7})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "chatcmpl-fake1"  # the upstream's own answer, not a re-encoding
    assert body["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    sent = upstream.requests[-1]
    assert sent["seed"] == 7 and sent["messages"] == CHAT["messages"]
    [record] = await gateway.records()
    assert (record.dialect, record.status, record.stream) == ("openai", 200, False)
    assert (record.prompt_tokens, record.output_tokens) == (7, 5)
    assert record.provider == "fake"


async def test_a_stream_without_usage_hides_the_usage_the_gateway_asked_for(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    response = await gateway.http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    pieces = frames(response.content)
    assert pieces[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in pieces[:-1]]
    assert all(c["choices"] for c in chunks)  # no usage-only chunk: the caller did not ask
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == (
        "Hello from the fake upstream.")
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}
    [record] = await gateway.records()
    assert (record.prompt_tokens, record.output_tokens, record.stream) == (7, 5, True)


async def test_a_stream_with_usage_keeps_the_usage_chunk(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/chat/completions", json={
        **CHAT, "stream": True, "stream_options": {"include_usage": True}})
    chunks = [orjson.loads(p) for p in frames(response.content)[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 12


async def test_an_unknown_model_is_openais_model_not_found(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and "`nope`" in error["message"]
    assert await gateway.records() == []


@pytest.mark.parametrize(("headers", "code"), [
    ({"authorization": ""}, None),
    ({"authorization": "Bearer not-a-key"}, "invalid_api_key"),
])
async def test_key_failures_are_401_in_openais_envelope(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream, headers: dict[str, str], code: str | None
) -> None:
    response = await gateway.http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == code
    assert upstream.requests == [] and await gateway.records() == []


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", None),
    (orjson.dumps({"messages": CHAT["messages"]}), "model"),
    (orjson.dumps({**CHAT, "stream": "yes"}), "stream"),
])
async def test_bad_requests_are_400_and_reach_nobody(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream, body: bytes, param: str | None
) -> None:
    response = await gateway.http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert upstream.requests == [] and await gateway.records() == []


async def test_an_upstream_refusal_reaches_the_caller_as_the_upstream_wrote_it(
    gateway: AppWithRecords, upstream: FakeOpenAIUpstream
) -> None:
    upstream.replies.append(Reply(status=400, error_code="context_length_exceeded"))
    response = await gateway.http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert response.json() == {"error": {"message": "fake failure 400",
                                         "type": "invalid_request_error", "param": None,
                                         "code": "context_length_exceeded"}}
    [record] = await gateway.records()
    assert record.status == 400 and record.failure_class == "caller_fault"


async def test_chat_completions_answer_without_the_version_segment(gateway: AppWithRecords) -> None:
    response = await gateway.http.post("/chat/completions", json=CHAT)
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


@pytest.mark.parametrize(("headers", "shape"), [
    ({}, "openai"),  # the client's Bearer header
    ({"x-goog-api-key": "{key}", "authorization": ""}, "gemini"),
    ({"x-api-key": "{key}", "anthropic-version": "2023-06-01", "authorization": ""},
     "anthropic"),
])
async def test_models_are_listed_in_the_dialect_the_caller_speaks(
    gateway: AppWithRecords, api_key: str, headers: dict[str, str], shape: str
) -> None:
    sent = {name: value.format(key=api_key) for name, value in headers.items()}
    listing = (await gateway.http.get("/v1/models", headers=sent)).json()
    one = (await gateway.http.get(f"/v1/models/{MODEL}", headers=sent)).json()
    if shape == "openai":
        assert listing["object"] == "list" and MODEL in [m["id"] for m in listing["data"]]
        assert one == {**one, "id": MODEL, "object": "model"}
    elif shape == "gemini":
        assert f"models/{MODEL}" in [m["name"] for m in listing["models"]]
        assert one["name"] == f"models/{MODEL}"
    else:
        assert MODEL in [m["id"] for m in listing["data"]] and "has_more" in listing
        assert one["type"] == "model" and one["id"] == MODEL


async def test_an_unknown_model_id_is_404_in_the_callers_dialect(gateway: AppWithRecords) -> None:
    response = await gateway.http.get("/v1/models/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


async def test_every_request_has_exactly_one_record(gateway: AppWithRecords) -> None:
    for stream in (False, True, False):
        response = await gateway.http.post("/v1/chat/completions",
                                           json={**CHAT, "stream": stream})
        assert response.status_code == 200
    assert [r.stream for r in await gateway.records()] == [False, True, False]

