"""Canonical answers → Response objects and Responses event streams, each object and event
parsed by the openai SDK's own types."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from cometgate.canonical import (
    BlobPart,
    Candidate,
    CandidateFinished,
    FinishReason,
    GenerateResponse,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.responses.caller_response import (
    encode_input_tokens,
    encode_response,
    new_frame,
)
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder
from cometgate.errors import UpstreamUnavailable

EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
USAGE = Usage(prompt_tokens=10, output_tokens=4, thoughts_tokens=3, cached_tokens=2)
DOCUMENT: dict[str, Any] = {"model": "alias", "input": "Hi", "instructions": "Be brief.",
                            "tools": [{"type": "function", "name": "f", "strict": True,
                                       "parameters": {"type": "object"}}],
                            "reasoning": {"effort": "low", "summary": "auto"}}


def frame(include: tuple[str, ...] = ()) -> Any:
    return new_frame(DOCUMENT, include)


def answer(*parts: Any, reason: FinishReason = FinishReason.STOP,
           logprobs: tuple[TokenLogprob, ...] = ()) -> GenerateResponse:
    return GenerateResponse("up", (Candidate(parts, reason, logprobs=logprobs),), USAGE, "id", 1.0)


def test_a_whole_answer_is_a_response_object() -> None:
    body = encode_response(answer(ReasoningPart("Think"), TextPart("Hel"), TextPart("lo"),
                                  ToolCallPart("f", {"a": 1}, "call_up"),
                                  ToolCallPart("f", {}), BlobPart("image/png", b"x")), frame())
    parsed = Response.model_validate(body)
    assert parsed.status == "completed" and parsed.model == "alias"
    assert [item.type for item in parsed.output] == ["reasoning", "message", "function_call",
                                                     "function_call"]
    assert body["output"][0]["summary"] == [{"type": "summary_text", "text": "Think"}]
    assert parsed.output_text == "Hello"
    first, second = body["output"][2:]
    assert (first["call_id"], first["arguments"]) == ("call_up", '{"a":1}')
    assert second["call_id"].startswith("call_") and second["call_id"] != "call_up"
    assert body["usage"] == {"input_tokens": 10,
                             "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
                             "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3},
                             "total_tokens": 17}
    assert body["instructions"] == "Be brief." and body["tools"][0]["strict"] is True
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert (body["parallel_tool_calls"], body["store"], body["truncation"]) == (
        True, True, "disabled")


@pytest.mark.parametrize(("reason", "detail"), [(FinishReason.MAX_TOKENS, "max_output_tokens"),
                                                (FinishReason.SAFETY, "content_filter")])
def test_a_cut_answer_is_incomplete(reason: FinishReason, detail: str) -> None:
    body = encode_response(answer(TextPart("Hel"), reason=reason), frame())
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": detail}
    assert body["output"][0]["status"] == "incomplete"
    Response.model_validate(body)


def test_logprobs_only_when_included() -> None:
    logprobs = (TokenLogprob("Hi", -0.5, (("Hi", -0.5), ("Yo", float("-inf")))),)
    plain = encode_response(answer(TextPart("Hi"), logprobs=logprobs), frame())
    assert "logprobs" not in plain["output"][0]["content"][0]
    body = encode_response(answer(TextPart("Hi"), logprobs=logprobs),
                           frame(("message.output_text.logprobs",)))
    [entry] = body["output"][0]["content"][0]["logprobs"]
    assert entry == {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": [
        {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
        {"token": "Yo", "logprob": -9999.0, "bytes": [89, 111]}]}
    Response.model_validate(body)


def test_input_tokens_body() -> None:
    assert orjson.loads(encode_input_tokens(42)) == {"object": "response.input_tokens",
                                                     "input_tokens": 42}


def run(events: list[StreamEvent], *, fail: bool = False,
        include: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], ResponseStreamEncoder]:
    encoder = ResponseStreamEncoder(frame(include))
    frames = [piece for event in events for piece in encoder.feed(event)]
    frames += encoder.fail(UpstreamUnavailable("gone")) if fail else encoder.end()
    parsed = []
    for piece in frames:
        assert piece.endswith(b"\n\n")
        head, data = piece.removesuffix(b"\n\n").split(b"\n")
        payload = orjson.loads(data.removeprefix(b"data: "))
        assert head == b"event: " + payload["type"].encode()
        EVENTS.validate_python(payload)
        parsed.append(payload)
    assert [p["sequence_number"] for p in parsed] == list(range(len(parsed)))
    return parsed, encoder


START = StreamStarted("up", "id", 1.0)


def test_a_stream_with_reasoning_text_and_a_call() -> None:
    parsed, encoder = run([
        START, PartDelta(ReasoningPart("Th")), PartDelta(ReasoningPart("ink")),
        PartDelta(TextPart("Hel")), PartDelta(TextPart("lo")),
        PartDelta(ToolCallPart("f", {"a": 1}, "c1")),
        CandidateFinished(FinishReason.STOP), UsageReported(USAGE)])
    assert [p["type"] for p in parsed] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [p["output_index"] for p in parsed if p["type"] == "response.output_item.added"] == [
        0, 1, 2]
    assert parsed[6]["text"] == "Think" and parsed[13]["text"] == "Hello"
    final = parsed[-1]["response"]
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert [item["type"] for item in final["output"]] == ["reasoning", "message",
                                                          "function_call"]
    assert final["id"] == parsed[0]["response"]["id"] and encoder.final == final
    assert parsed[0]["response"]["status"] == "in_progress"


def test_a_stream_cut_by_the_limit_ends_incomplete() -> None:
    parsed, _ = run([START, PartDelta(TextPart("Hel")),
                     CandidateFinished(FinishReason.MAX_TOKENS), UsageReported(USAGE)])
    assert parsed[-1]["type"] == "response.incomplete"
    assert parsed[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert parsed[-2]["item"]["status"] == "incomplete"


def test_a_stream_that_breaks_ends_with_error_then_failed() -> None:
    parsed, encoder = run([START, PartDelta(TextPart("Hel"))], fail=True)
    assert [p["type"] for p in parsed][-2:] == ["error", "response.failed"]
    assert parsed[-2]["message"] == "gone"
    failed = parsed[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["status"] == "incomplete"
    assert encoder.final == failed


def test_a_stream_that_breaks_before_any_event_still_opens() -> None:
    parsed, _ = run([], fail=True)
    assert [p["type"] for p in parsed] == ["response.created", "response.in_progress", "error",
                                           "response.failed"]


def test_streamed_logprobs_when_included() -> None:
    logprobs = (TokenLogprob("Hi", -0.1),)
    parsed, _ = run([START, PartDelta(TextPart("Hi"), logprobs=logprobs),
                     CandidateFinished(FinishReason.STOP)],
                    include=("message.output_text.logprobs",))
    [delta] = [p for p in parsed if p["type"] == "response.output_text.delta"]
    assert delta["logprobs"] == [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                                  "top_logprobs": []}]
    assert parsed[-1]["response"]["output"][0]["content"][0]["logprobs"] == delta["logprobs"]
