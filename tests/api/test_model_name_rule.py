"""One rule for the model name a caller reads: the name it asked for, on every path — the
three same-dialect pass-throughs (whole answers and every stream event) and translations —
while the upstream's own name goes in the `x-cometgate-upstream-model` header and the usage
record. A pass-through changes nothing else in the upstream's bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.upstream_fakes import UPSTREAM, UPSTREAM_HEADER, Gateway, running
from tests.fakes import gemini_upstream as gemini
from tests.fakes import openai_upstream as openai


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running(tmp_path) as gateway:
        yield gateway


def gemini_body() -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def chat_body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], **fields}


def message_body(model: str, **fields: Any) -> bytes:
    return orjson.dumps({"model": model, "max_tokens": 32,
                         "messages": [{"role": "user", "content": "Hi"}], **fields})


def data_lines(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in body.split(b"\n")
            if line.startswith(b"data: {")]


async def test_gemini_pass_through_answer(gw: Gateway) -> None:
    gw.fakes.gemini.replies.append(gemini.Reply(model_version="gemini-2.5-flash-001"))
    response = await gw.http.post("/v1beta/models/gemini-alias:generateContent",
                                  json=gemini_body(), headers={"x-goog-api-key": gw.key})
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == "gemini-alias"
    assert response.headers[UPSTREAM_HEADER] == UPSTREAM["gemini"]
    # Google's pretty-printed bytes, but for the name.
    assert b'"modelVersion": "gemini-alias",\n' in response.content


async def test_gemini_pass_through_sse_stream(gw: Gateway) -> None:
    response = await gw.http.post(
        "/v1beta/models/gemini-alias:streamGenerateContent?alt=sse", json=gemini_body(),
        headers={"x-goog-api-key": gw.key})
    assert response.status_code == 200
    assert response.headers[UPSTREAM_HEADER] == UPSTREAM["gemini"]
    sent = b"".join(gw.fakes.gemini.sent[-1])
    assert response.content == sent.replace(b'"modelVersion":"gemini-2.5-flash"',
                                            b'"modelVersion":"gemini-alias"')
    events = data_lines(response.content)
    assert len(events) == 3 and {e["modelVersion"] for e in events} == {"gemini-alias"}


async def test_gemini_pass_through_json_array_stream(gw: Gateway) -> None:
    response = await gw.http.post("/v1beta/models/gemini-alias:streamGenerateContent",
                                  json=gemini_body(), headers={"x-goog-api-key": gw.key})
    assert response.status_code == 200
    elements = orjson.loads(response.content)
    assert len(elements) == 3 and {e["modelVersion"] for e in elements} == {"gemini-alias"}
    sent = b"".join(gw.fakes.gemini.sent[-1])
    assert response.content == sent.replace(b'"modelVersion": "gemini-2.5-flash"',
                                            b'"modelVersion": "gemini-alias"')


async def test_openai_pass_through_answer(gw: Gateway) -> None:
    response = await gw.http.post("/v1/chat/completions", json=chat_body("openai-alias"),
                                  headers={"authorization": f"Bearer {gw.key}"})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "openai-alias"
    assert gw.fakes.openai.requests[-1]["model"] == UPSTREAM["openai"]
    assert response.headers[UPSTREAM_HEADER] == UPSTREAM["openai"]


@pytest.mark.parametrize("include_usage", [False, True])
async def test_openai_pass_through_stream(gw: Gateway, include_usage: bool) -> None:
    gw.fakes.openai.replies.append(openai.Reply(text="One two three.", chunks=3))
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    response = await gw.http.post(
        "/v1/chat/completions", json=chat_body("openai-alias", stream=True, **options),
        headers={"authorization": f"Bearer {gw.key}"})
    assert response.status_code == 200
    assert response.headers[UPSTREAM_HEADER] == UPSTREAM["openai"]
    chunks = data_lines(response.content)
    assert len(chunks) >= 3 and {c["model"] for c in chunks} == {"openai-alias"}
    assert any(c["choices"] == [] for c in chunks) is include_usage
    assert response.content.endswith(b"data: [DONE]\n\n")


async def test_anthropic_pass_through_answer_and_stream(gw: Gateway) -> None:
    answer = await gw.messages(message_body("anthropic-alias"))
    assert answer.json()["model"] == "anthropic-alias"
    assert answer.headers[UPSTREAM_HEADER] == UPSTREAM["anthropic"]
    stream = await gw.messages(message_body("anthropic-alias", stream=True))
    (start,) = [e for e in data_lines(stream.content) if e["type"] == "message_start"]
    assert start["message"]["model"] == "anthropic-alias"
    assert b"claude-up" not in stream.content
    assert stream.headers[UPSTREAM_HEADER] == UPSTREAM["anthropic"]


async def test_the_record_keeps_the_upstreams_name(gw: Gateway) -> None:
    await gw.http.post("/v1/chat/completions", json=chat_body("openai-alias"),
                       headers={"authorization": f"Bearer {gw.key}"})
    await gw.messages(message_body("anthropic-alias", stream=True))
    await gw.http.post("/v1beta/models/gemini-alias:generateContent", json=gemini_body(),
                       headers={"x-goog-api-key": gw.key})
    records = await gw.records()
    assert sorted((r.dialect, r.model, r.upstream_model) for r in records) == [
        ("anthropic", "anthropic-alias", "claude-up"), ("gemini", "gemini-alias", "gemini-up"),
        ("openai", "openai-alias", "gpt-up")]


@pytest.mark.parametrize("stream", [False, True])
async def test_translated_answers_name_the_alias_and_the_header_the_upstream(
    gw: Gateway, stream: bool
) -> None:
    """An Anthropic caller on an OpenAI upstream, a Gemini caller on an Anthropic one, an
    OpenAI caller on a Gemini one."""
    anthropic_caller = await gw.messages(message_body("openai-alias", stream=stream))
    suffix = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
    gemini_caller = await gw.http.post(f"/v1beta/models/anthropic-alias{suffix}",
                                       json=gemini_body(), headers={"x-goog-api-key": gw.key})
    openai_caller = await gw.http.post("/v1/chat/completions",
                                       json=chat_body("gemini-alias", stream=stream),
                                       headers={"authorization": f"Bearer {gw.key}"})
    for response, upstream in ((anthropic_caller, "openai"), (gemini_caller, "anthropic"),
                               (openai_caller, "gemini")):
        assert response.status_code == 200, response.text
        assert response.headers[UPSTREAM_HEADER] == UPSTREAM[upstream]
        assert UPSTREAM[upstream].encode() not in response.content
    if stream:
        names = [next(e["message"]["model"] for e in data_lines(anthropic_caller.content)
                      if e["type"] == "message_start"),
                 *{e["modelVersion"] for e in data_lines(gemini_caller.content)},
                 *{c["model"] for c in data_lines(openai_caller.content)}]
    else:
        names = [anthropic_caller.json()["model"], gemini_caller.json()["modelVersion"],
                 openai_caller.json()["model"]]
    assert names == ["openai-alias", "anthropic-alias", "gemini-alias"]
