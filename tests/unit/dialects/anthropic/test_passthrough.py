"""The Anthropic pass-through's pure pieces: the body that goes up, the answer and the events
that come back (renamed, read for usage and failures), and how a relayed stream ends. (The
headers that go up are `count_tokens.forwarded_headers`, tested with counting.)"""

from __future__ import annotations

import orjson
import pytest

from cometgate.canonical import Usage
from cometgate.dialects.anthropic.passthrough import (
    ForwardedAnthropicFraming,
    ForwardedMessageEvents,
    answer_for_caller,
    forwarded_body,
)
from cometgate.errors import FailureClass, InvalidRequest, UpstreamUnavailable


def test_the_body_changes_only_in_its_model() -> None:
    body = b'{"model": "alias", "context_management": {"edits": []}, "n": 1.0}'
    forwarded = forwarded_body(body, orjson.loads(body), "claude-up")
    assert forwarded == b'{"model": "claude-up", "context_management": {"edits": []}, "n": 1.0}'


def test_an_answer_is_renamed_and_read_for_usage() -> None:
    body = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-up",'
            b'"content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":5,'
            b'"cache_creation_input_tokens":20,"cache_read_input_tokens":100,'
            b'"output_tokens":9}}')
    answer, usage = answer_for_caller(body, "alias")
    assert answer == body.replace(b'"claude-up"', b'"alias"')
    assert usage == Usage(prompt_tokens=125, output_tokens=9, cached_tokens=100)


@pytest.mark.parametrize("body", [b"<html>", b"[1]", b'{"type":"message"}'])
def test_an_odd_answer_is_returned_as_it_came(body: bytes) -> None:
    assert answer_for_caller(body, "alias") == (body, None)


def sse(kind: str, payload: dict[str, object]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + orjson.dumps(payload) + b"\n\n"


START = sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-up", "content": [],
    "usage": {"input_tokens": 5, "cache_read_input_tokens": 3, "output_tokens": 1}}})
DELTA = sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
    "type": "text_delta", "text": 'a "model":"x" message_stop "usage"'}})
END = sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                            "usage": {"output_tokens": 12}})
STOP = sse("message_stop", {"type": "message_stop"})


def test_events_are_relayed_one_by_one_renamed_only_at_the_start() -> None:
    events = ForwardedMessageEvents("alias")
    body = START + DELTA + END + STOP
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    relayed = [event for piece in pieces for event in events.feed(piece)] + events.close()
    assert [event.data for event in relayed] == [
        START.replace(b'"claude-up"', b'"alias"'), DELTA, END, STOP]
    assert [event.usage for event in relayed] == [
        Usage(prompt_tokens=8, output_tokens=1, cached_tokens=3), None,
        Usage(prompt_tokens=8, output_tokens=12, cached_tokens=3), None]
    assert all(event.error is None for event in relayed)
    assert events.early_end() is None


def test_an_error_event_is_reported_and_relayed() -> None:
    error = sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                     "message": "Overloaded"}})
    events = ForwardedMessageEvents("alias")
    relayed = events.feed(START + error)
    assert relayed[1].data == error
    failure = relayed[1].error
    assert failure is not None
    assert (failure.failure_class, failure.upstream_status) == (FailureClass.TRANSIENT, 529)
    assert events.early_end() is None  # the error event said why it ended


def test_a_stream_without_message_stop_ends_early() -> None:
    events = ForwardedMessageEvents("alias")
    events.feed(START + DELTA)
    failure = events.early_end()
    assert failure is not None
    assert (failure.failure_class, failure.http_status) == (FailureClass.TRANSIENT, 503)


def test_what_trails_the_last_event_comes_last() -> None:
    events = ForwardedMessageEvents("alias")
    assert [event.data for event in events.feed(STOP + b"data: partial")] == [STOP]
    assert [event.data for event in events.close()] == [b"data: partial"]


def test_the_end_of_a_stream_is_known_by_its_events() -> None:
    framing = ForwardedAnthropicFraming()
    assert framing.is_final(END) and framing.is_final(STOP)
    assert not framing.is_final(START) and not framing.is_final(DELTA)
    assert framing.is_final(b'data: {"type":"message_stop"}\n\n')  # without an event line


@pytest.mark.parametrize(("error", "expected"), [
    (UpstreamUnavailable("gone"), {"type": "overloaded_error", "message": "gone"}),
    (InvalidRequest("bad\nthing"), {"type": "invalid_request_error", "message": "bad\nthing"}),
])
def test_a_broken_stream_ends_with_an_error_event(error: Exception,
                                                  expected: dict[str, str]) -> None:
    assert isinstance(error, UpstreamUnavailable | InvalidRequest)
    data = ForwardedAnthropicFraming().error(error, opened=True)
    assert data.startswith(b"event: error\ndata: ") and data.endswith(b"\n\n")
    assert data.count(b"\n") == 3  # one data line, whatever the message holds
    assert orjson.loads(data.split(b"data: ", 1)[1]) == {"type": "error", "error": expected}
