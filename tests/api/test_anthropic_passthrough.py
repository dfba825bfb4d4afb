"""The Anthropic pass-through, end to end: an Anthropic caller whose model routes to an
Anthropic upstream has its request forwarded as it is, to the fake Anthropic server over a
real socket, which records what arrived (body bytes, headers, query) and what it sent back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.api.upstream_fakes import UPSTREAM_HEADER, Gateway, running
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import openai_upstream as openai

BETAS = "context-management-2025-06-27,interleaved-thinking-2025-05-14"

# What Claude Code sends, give or take: fields no translation carries, an unknown future
# field, a tool input that itself has a "model" key, the model last, and unusual spacing —
# all of which must arrive exactly as written.
CLAUDE_CODE_BODY = b"""{
  "max_tokens": 32000,
  "messages": [
    {"role": "user", "content": [
      {"type": "text", "text": "Plan it", "cache_control": {"type": "ephemeral"}}]},
    {"role": "assistant", "content": [
      {"type": "tool_use", "id": "toolu_1", "name": "Task",
       "input": {"model": "anthropic-alias", "prompt": "caf\\u00e9"}}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]}
  ],
  "system": [{"type": "text", "text": "You are Claude Code.",
              "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
  "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
            {"name": "Task", "input_schema": {
              "type": "object", "properties": {"model": {"type": "string"}}}}],
  "metadata": {"user_id": "user_abc"},
  "thinking": {"type": "adaptive"},
  "output_config": {"effort": "high"},
  "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
  "a_field_from_the_future": {"x": 1.50},
  "stream": false,
  "model" :  "anthropic-alias"
}"""


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running(tmp_path) as gateway:
        yield gateway


def body_of(**fields: Any) -> bytes:
    document = {"model": "anthropic-alias", "max_tokens": 64,
                "messages": [{"role": "user", "content": "Hi"}], **fields}
    return orjson.dumps(document)


def upstream_bytes(sent: bytes) -> bytes:
    """What the upstream must receive: the caller's bytes, the top-level model renamed."""
    return sent.replace(b'"model" :  "anthropic-alias"', b'"model" :  "claude-up"', 1)


async def test_the_body_arrives_byte_identical_but_for_the_model(gw: Gateway) -> None:
    response = await gw.messages(CLAUDE_CODE_BODY, query="beta=true",
                                 headers={"anthropic-beta": BETAS})
    assert response.status_code == 200, response.text
    fake = gw.fakes.anthropic
    assert fake.bodies[-1] == upstream_bytes(CLAUDE_CODE_BODY)
    assert fake.requests[-1]["messages"][1]["content"][0]["input"]["model"] == "anthropic-alias"
    seen = fake.headers[-1]
    assert (seen["anthropic-beta"], seen["anthropic-version"]) == (BETAS, "2023-06-01")
    assert seen["x-api-key"] == "sk-ant-gateway"  # the gateway's credential, not the caller's
    assert gw.key not in str(seen)
    assert fake.queries[-1] == "beta=true"
    # Nothing refused, nothing dropped: everything went to the one API that understands it.
    assert "x-cometgate-dropped" not in response.headers
    message = response.json()
    assert (message["type"], message["model"]) == ("message", "anthropic-alias")
    assert response.headers[UPSTREAM_HEADER] == "claude-up"


async def test_the_answer_is_the_upstreams_but_for_the_model(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(thinking="Hmm.", text="Hello."))
    response = await gw.messages(body_of())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "anthropic-alias"
    # The upstream's own message: its id, its signed thinking block, its usage fields.
    assert answer["id"] == "msg_fake0001"
    assert answer["content"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": anthropic.signature_for("Hmm.")},
        {"type": "text", "text": "Hello."}]
    assert set(answer["usage"]) == {"input_tokens", "cache_creation_input_tokens",
                                    "cache_read_input_tokens", "output_tokens"}


async def test_without_a_caller_version_the_providers_is_sent(gw: Gateway) -> None:
    response = await gw.http.post("/v1/messages", content=body_of(),
                                  headers={"x-api-key": gw.key})
    assert response.status_code == 200, response.text
    seen = gw.fakes.anthropic.headers[-1]
    assert seen["anthropic-version"] == "2023-06-01" and "anthropic-beta" not in seen


async def test_a_key_in_the_query_is_not_forwarded(gw: Gateway) -> None:
    response = await gw.http.post(f"/v1/messages?beta=true&key={gw.key}", content=body_of(),
                                  headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 200, response.text
    assert gw.fakes.anthropic.queries[-1] == "beta=true"


async def test_a_stream_is_relayed_event_by_event(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(text="One two three four.", chunks=4))
    sent = body_of(stream=True, context_management={"edits": []})
    async with gw.http.stream(
            "POST", "/v1/messages?beta=true", content=sent,
            headers={"x-api-key": gw.key, "anthropic-version": "2023-06-01",
                     "anthropic-beta": BETAS}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers[UPSTREAM_HEADER] == "claude-up"
        received = b"".join([piece async for piece in response.aiter_bytes()])
    events = gw.fakes.anthropic.sent[-1]
    start = events[0].replace(b'"model":"claude-up"', b'"model":"anthropic-alias"')
    assert start != events[0]
    assert received == b"".join([start, *events[1:]])  # every other byte as the upstream sent
    assert gw.fakes.anthropic.bodies[-1] == sent.replace(b'"anthropic-alias"', b'"claude-up"')
    assert gw.fakes.anthropic.headers[-1]["anthropic-beta"] == BETAS


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_is_recorded_with_cache_reads_and_writes(gw: Gateway, stream: bool) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(
        text="Cached.", input_tokens=5, cache_read_tokens=100, cache_creation_tokens=20,
        output_tokens=9))
    response = await gw.messages(body_of(stream=stream))
    assert response.status_code == 200
    (record,) = await gw.records()
    assert (record.model, record.provider, record.upstream_model, record.dialect,
            record.stream, record.status) == (
        "anthropic-alias", "anthropic", "claude-up", "anthropic", stream, 200)
    assert (record.prompt_tokens, record.cached_tokens, record.output_tokens) == (125, 100, 9)


async def test_an_upstream_400_is_returned_as_it_is(gw: Gateway) -> None:
    # The fake refuses a thinking budget below 1024, as Anthropic does.
    sent = body_of(thinking={"type": "enabled", "budget_tokens": 100})
    response = await gw.messages(sent)
    assert response.status_code == 400
    assert response.content == orjson.dumps({
        "type": "error", "error": {
            "type": "invalid_request_error",
            "message": "thinking.budget_tokens: must be ≥ 1024 and < max_tokens"},
        "request_id": "req_fake0001"})
    assert len(gw.fakes.anthropic.requests) == 1  # the caller's fault: no failover


async def test_an_upstream_413_keeps_its_status(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(status=413, error_type="request_too_large"))
    response = await gw.messages(body_of())
    assert response.status_code == 413
    assert response.json()["error"] == {"type": "request_too_large",
                                         "message": "fake failure 413"}


async def test_overloaded_fails_over_to_a_translated_candidate(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(status=529, error_type="overloaded_error"))
    gw.fakes.openai.replies.append(openai.Reply(text="From the other upstream."))
    response = await gw.messages(body_of(model="claude-failover"))
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["model"] == "claude-failover"
    assert message["content"] == [{"type": "text", "text": "From the other upstream."}]
    assert response.headers[UPSTREAM_HEADER] == "gpt-up"
    assert len(gw.fakes.anthropic.requests) == 1
    assert gw.fakes.openai.requests[-1]["model"] == "gpt-up"


async def test_an_error_event_before_the_answer_fails_over(gw: Gateway) -> None:
    """Overloaded after the 200 but before message_start: nothing reached the caller yet."""
    gw.fakes.anthropic.replies.append(anthropic.Reply(fail_at_start=True))
    gw.fakes.openai.replies.append(openai.Reply(text="Served instead."))
    response = await gw.messages(body_of(model="claude-failover", stream=True))
    assert response.status_code == 200
    deltas = [orjson.loads(line[6:])["delta"] for line in response.content.split(b"\n")
              if line.startswith(b'data: {"type":"content_block_delta"')]
    assert "".join(delta["text"] for delta in deltas) == "Served instead."
    assert response.content.count(b"event: error") == 0
    assert response.headers[UPSTREAM_HEADER] == "gpt-up"
    assert len(gw.fakes.anthropic.requests) == len(gw.fakes.openai.requests) == 1


async def test_overloaded_with_nothing_else_is_a_529(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(status=529, error_type="overloaded_error"))
    response = await gw.messages(body_of())
    assert response.status_code == 529
    assert response.json()["error"]["type"] == "overloaded_error"


async def test_an_error_event_mid_stream_is_relayed_with_its_usage(gw: Gateway) -> None:
    """(The record's status for an in-band failure of any pass-through stream is issue 15's.)"""
    gw.fakes.anthropic.replies.append(anthropic.Reply(text="Partial answer", chunks=2,
                                                      fail_mid_stream=True))
    response = await gw.messages(body_of(stream=True))
    assert response.status_code == 200
    events = gw.fakes.anthropic.sent[-1]
    assert events[-1].startswith(b"event: error")
    assert response.content.endswith(events[-1])  # the upstream's own error event, once
    assert response.content.count(b"event: error") == 1
    (record,) = await gw.records()
    assert record.prompt_tokens == 7  # message_start's count: those tokens were spent


async def test_a_stream_cut_short_ends_with_an_error_event(gw: Gateway) -> None:
    gw.fakes.anthropic.replies.append(anthropic.Reply(text="Cut", truncate=True))
    response = await gw.messages(body_of(stream=True))
    assert response.status_code == 200
    assert b"message_stop" not in response.content
    last = response.content.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert last.startswith(b"event: error\ndata: ")
    error = orjson.loads(last.split(b"data: ", 1)[1])
    assert error["error"] == {"type": "overloaded_error",
                              "message": "upstream closed the stream early"}
    (record,) = await gw.records()
    assert (record.status, record.failure_class) == (503, "transient")
