"""Output handling without a model: stop sequences, tool-call parsing, logprobs, wire shapes."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from cometgate.worker.generation import StopScanner, token_logprobs
from cometgate.worker.openai_wire import (
    StreamIdentity,
    Usage,
    chunk,
    error_body,
    sse_event,
    usage_chunk,
)
from cometgate.worker.tool_markup import (
    could_become_tool_call,
    parse_tool_calls,
    render_tool_call,
)

NAMES = frozenset({"get_weather"})


def feed_all(scanner: StopScanner, pieces: list[str]) -> str:
    return "".join(scanner.feed(piece) for piece in pieces) + scanner.flush()


def test_stop_sequence_split_across_pieces_is_cut_and_never_leaks() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("Hello E") == "Hello "
    assert scanner.feed("N") == ""
    assert scanner.feed("D and more") == ""
    assert scanner.stopped
    assert scanner.flush() == ""


def test_false_start_of_a_stop_sequence_is_released() -> None:
    scanner = StopScanner(["END"])
    assert feed_all(scanner, ["the E", "ND", "?"]) == "the "
    other = StopScanner(["END"])
    assert feed_all(other, ["E", "X", "IT"]) == "EXIT"
    assert not other.stopped


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopScanner(["b", "zz"]), ["azzb"]) == "a"


def test_without_stops_everything_passes() -> None:
    assert feed_all(StopScanner([]), ["a", "b"]) == "ab"


def test_tool_calls_are_parsed_with_fresh_ids() -> None:
    text = ' <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n' \
           '<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
    calls = parse_tool_calls(text, NAMES)
    assert calls is not None and len(calls) == 2
    assert calls[0].arguments == '{"city":"Oslo"}'
    assert calls[0].id.startswith("call_") and calls[0].id != calls[1].id


@pytest.mark.parametrize("text", [
    "plain answer",
    '<tool_call>{"name": "other", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>',
    '<tool_call>{"name": "get_weather"',
    '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call> and some chat',
    "<tool_call>not json</tool_call>",
])
def test_non_calls_are_text(text: str) -> None:
    assert parse_tool_calls(text, NAMES) is None


def test_could_become_tool_call() -> None:
    assert could_become_tool_call("")
    assert could_become_tool_call(" <tool_")
    assert could_become_tool_call('<tool_call>{"na')
    assert not could_become_tool_call("<b>")
    assert not could_become_tool_call("Hi")


def test_render_tool_call_keeps_unparsable_arguments() -> None:
    rendered = render_tool_call("f", "{oops")
    assert rendered == '<tool_call>{"name":"f","arguments":"{oops"}</tool_call>'


def test_token_logprobs_are_normalised_and_sorted() -> None:
    logits = np.array([0.0, 2.0, 1.0, -1.0], dtype=np.float32)
    entry = token_logprobs(logits, 2, 2, lambda t: f"t{t}".encode())
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert entry.logprob == pytest.approx(float(np.log(probabilities[2])))
    assert [top.token for top in entry.top_logprobs] == ["t1", "t2"]
    assert entry.bytes == tuple(b"t2")
    assert token_logprobs(logits, 0, 0, lambda t: b"x").top_logprobs == ()


def test_sse_framing_and_chunk_shape() -> None:
    identity = StreamIdentity("chatcmpl-1", 5, "m")
    frame = sse_event(chunk(identity, 1, {"content": "hi"}, with_usage_field=True))
    assert frame.startswith(b"data: {") and frame.endswith(b"}\n\n") and frame.count(b"\n") == 2
    payload = orjson.loads(frame[len(b"data: "):])
    assert payload["object"] == "chat.completion.chunk"
    assert payload["choices"][0] == {"index": 1, "delta": {"content": "hi"}, "logprobs": None,
                                     "finish_reason": None}
    assert payload["usage"] is None
    usage = usage_chunk(identity, Usage(3, 4))
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 7


def test_error_envelope() -> None:
    assert error_body("bad", param="n", code="c") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "n", "code": "c"}}


def test_truncated_parallel_calls_keep_the_complete_ones() -> None:
    complete = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
    cut = complete + '<tool_call>\n{"name": "get_weather", "argum'
    calls = parse_tool_calls(cut, NAMES, truncated=True)
    assert calls is not None and [c.arguments for c in calls] == ['{"city":"Paris"}']
    # Without truncation the same text is not a clean list of calls.
    assert parse_tool_calls(cut, NAMES) is None
    # A truncated tail that is not a call keeps the whole output as text.
    assert parse_tool_calls(complete + "and then", NAMES, truncated=True) is None
