"""Reading a forwarded Responses answer only as far as accounting needs, and ending a relayed
stream that broke."""

from __future__ import annotations

import orjson
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from cometgate.canonical import Usage
from cometgate.dialects.responses.caller_stream import sse_event
from cometgate.dialects.responses.passthrough import (
    ForwardedResponseEvents,
    ForwardedResponsesFraming,
    forwarded_body,
    usage_of_response,
)
from cometgate.errors import UpstreamUnavailable

EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
USAGE = {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
         "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 2},
         "total_tokens": 15}
RESPONSE = {"id": "resp_up", "object": "response", "created_at": 1, "model": "up",
            "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "status": "in_progress"}


def test_only_the_model_is_rewritten() -> None:
    body = orjson.loads(forwarded_body({"model": "alias", "input": "x", "extra": [1]}, "up"))
    assert body == {"model": "up", "input": "x", "extra": [1]}


def test_usage_is_read_from_a_whole_answer() -> None:
    assert usage_of_response(orjson.dumps({"usage": USAGE})) == Usage(9, 4, 2, 4)
    assert usage_of_response(b"not json") is None


def test_events_are_relayed_whole_and_the_last_carries_the_usage() -> None:
    created = sse_event({"type": "response.created", "sequence_number": 0,
                         "response": RESPONSE})
    delta = sse_event({"type": "response.output_text.delta", "sequence_number": 1,
                       "item_id": "m", "output_index": 0, "content_index": 0, "delta": "Hi",
                       "logprobs": []})
    done = sse_event({"type": "response.completed", "sequence_number": 2,
                      "response": {**RESPONSE, "status": "completed", "usage": USAGE}})
    body = created + delta + done
    reader = ForwardedResponseEvents()
    events = reader.feed(body[:30]) + reader.feed(body[30:]) + reader.close()
    assert b"".join(e.data for e in events) == body
    assert [e.usage for e in events] == [None, None, Usage(9, 4, 2, 4)]
    assert all(e.error is None for e in events)


def test_an_in_band_error_is_classified() -> None:
    error = sse_event({"type": "error", "sequence_number": 3, "code": "server_error",
                       "message": "boom", "param": None})
    [event] = ForwardedResponseEvents().feed(error)
    assert event.error is not None and event.data == error


def test_a_broken_relay_ends_with_error_then_failed_numbered_on() -> None:
    framing = ForwardedResponsesFraming()
    created = sse_event({"type": "response.created", "sequence_number": 0,
                         "response": RESPONSE})
    assert not framing.is_final(created)
    assert not framing.is_final(b'event: x\ndata: {"type":"x","sequence_number":4}\n\n')
    tail = framing.error(UpstreamUnavailable("gone"), opened=True)
    events = [orjson.loads(block.split(b"\ndata: ", 1)[1])
              for block in tail.split(b"\n\n") if block]
    for event in events:
        EVENTS.validate_python(event)
    assert [(e["type"], e["sequence_number"]) for e in events] == [
        ("error", 5), ("response.failed", 6)]
    assert events[1]["response"]["id"] == "resp_up"
    assert events[1]["response"]["status"] == "failed"
    assert framing.is_final(sse_event({"type": "response.completed", "sequence_number": 7,
                                       "response": RESPONSE}))
