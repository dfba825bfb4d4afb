"""Reasoning state in `encrypted_content`: every signature an upstream put on a part (reasoning,
text, a function call, a bare signature) leaves sealed in a reasoning item and comes back on
the same part, from a whole answer and from a stream; without a seal or the wish for it the
output is as before; a blob that does not open is a 400 naming it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cometgate.canonical import (
    Candidate,
    CandidateFinished,
    FinishReason,
    GenerateResponse,
    Message,
    Part,
    PartDelta,
    ReasoningPart,
    StreamStarted,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from cometgate.dialects.responses.caller_messages import decode_input
from cometgate.dialects.responses.caller_response import encode_response, new_frame
from cometgate.dialects.responses.caller_stream import ResponseStreamEncoder
from cometgate.dialects.responses.reasoning_state import INCLUDE
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import InvalidRequest

SEAL = StateSeal(b"a gateway secret of enough length")
DOCUMENT = {"model": "m", "input": "Weather?"}
CALL = ToolCallPart("weather", {"city": "Lima"}, "call_1", b"call-signature")
PARTS: tuple[Part, ...] = (
    ReasoningPart("I should call the tool.", b"thought-signature"),
    TextPart("Let me check."),
    CALL,
    TextPart("", b"trailing-signature"),
)


def _answer(parts: tuple[Part, ...]) -> GenerateResponse:
    return GenerateResponse("m", (Candidate(parts, FinishReason.STOP),), Usage(3, 4), "r", 0.0)


def _returned(output: list[dict[str, Any]]) -> Message:
    """The assistant turn the gateway rebuilds when `output` comes back as input."""
    items = [{"role": "user", "content": "Weather?"}, *output,
             {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]
    conversation = decode_input(None, items, SEAL)
    return conversation.messages[1]


def test_every_signature_of_a_whole_answer_comes_back_on_its_part() -> None:
    frame = new_frame(DOCUMENT, (INCLUDE,), seal=SEAL)
    output = encode_response(_answer(PARTS), frame)["output"]
    assert [item["type"] for item in output] == [
        "reasoning", "message", "reasoning", "function_call", "reasoning"]
    assert output[0]["summary"] == [{"type": "summary_text", "text": "I should call the tool."}]
    assert all(isinstance(i["encrypted_content"], str) for i in output if i["type"] == "reasoning")
    assert "signature" not in str(output)
    assert _returned(output) == Message("assistant", PARTS)


def test_a_stored_answer_is_sealed_without_include() -> None:
    output = encode_response(_answer(PARTS), new_frame(DOCUMENT, seal=SEAL, kept=True))["output"]
    assert _returned(output) == Message("assistant", PARTS)


def test_without_a_seal_or_a_wish_the_output_is_unchanged() -> None:
    for frame in (new_frame(DOCUMENT, (INCLUDE,)), new_frame(DOCUMENT, seal=SEAL)):
        output = encode_response(_answer(PARTS), frame)["output"]
        assert [item["type"] for item in output] == ["reasoning", "message", "function_call",
                                                     "message"]
        assert all("encrypted_content" not in item for item in output)


def test_a_streamed_answer_seals_the_same_state() -> None:
    encoder = ResponseStreamEncoder(new_frame(DOCUMENT, (INCLUDE,), seal=SEAL))
    events = [StreamStarted("m", "r", 0.0),
              PartDelta(ReasoningPart("I should call ")), PartDelta(ReasoningPart("the tool.")),
              PartDelta(ReasoningPart("", b"thought-signature")),  # Anthropic's signature_delta
              PartDelta(TextPart("Let me check.")), PartDelta(CALL),
              PartDelta(TextPart("", b"trailing-signature")),
              CandidateFinished(FinishReason.STOP)]
    for event in events:
        encoder.feed(event)
    encoder.end()
    assert encoder.final is not None
    assert _returned(encoder.final["output"]) == Message("assistant", PARTS)


def test_reasoning_without_signatures_comes_back_whole() -> None:
    parts: tuple[Part, ...] = (ReasoningPart("plain thoughts"), TextPart("Answer."))
    output = encode_response(_answer(parts), new_frame(DOCUMENT, (INCLUDE,), seal=SEAL))["output"]
    items = [{"role": "user", "content": "Q"}, *output, {"role": "user", "content": "More?"}]
    assert decode_input(None, items, SEAL).messages[1] == Message("assistant", parts)


def test_a_carried_signature_never_crosses_into_another_turn() -> None:
    frame = new_frame(DOCUMENT, (INCLUDE,), seal=SEAL)
    output = encode_response(_answer((CALL,)), frame)["output"]
    reasoning = output[0]
    items = [{"role": "user", "content": "Q"}, reasoning, {"role": "user", "content": "R"},
             {"type": "function_call", "call_id": "call_1", "name": "weather",
              "arguments": '{"city": "Lima"}'},
             {"type": "function_call_output", "call_id": "call_1", "output": "x"}]
    messages = decode_input(None, items, SEAL).messages
    assert messages[2] == Message("assistant", (ToolCallPart("weather", {"city": "Lima"},
                                                             "call_1"),))
    assert isinstance(messages[3].parts[0], ToolResultPart)


@pytest.mark.parametrize("blob", ["", "not-a-token", 7, SEAL.seal(b"[]", purpose="other")])
def test_a_blob_that_does_not_open_is_refused_by_its_place(blob: object) -> None:
    items = [{"role": "user", "content": "Q"},
             {"type": "reasoning", "summary": [], "encrypted_content": blob}]
    with pytest.raises(InvalidRequest) as caught:
        decode_input(None, items, SEAL)
    assert list(caught.value.violations) == ["input[1].encrypted_content"]
    assert caught.value.message.startswith(
        "Invalid 'input[1].encrypted_content': the encrypted content could not be verified")


def test_another_gateways_blob_is_refused() -> None:
    output = encode_response(_answer(PARTS), new_frame(DOCUMENT, (INCLUDE,), seal=SEAL))["output"]
    other = StateSeal(b"another gateway's secret, long enough")
    with pytest.raises(InvalidRequest, match="sealed by another gateway secret"):
        decode_input(None, [{"role": "user", "content": "Q"}, *output], other)


def _streamed(frame_include: tuple[str, ...]) -> tuple[list[dict[str, Any]], ResponseStreamEncoder]:
    encoder = ResponseStreamEncoder(new_frame(DOCUMENT, frame_include, seal=SEAL, kept=True))
    frames: list[bytes] = []
    for event in (StreamStarted("m", "r", 0.0), PartDelta(ReasoningPart("t", b"sig")),
                  PartDelta(TextPart("Answer.")), CandidateFinished(FinishReason.STOP)):
        frames += encoder.feed(event)
    frames += encoder.end()
    events = [orjson.loads(frame.split(b"\ndata: ", 1)[1]) for frame in frames]
    return events, encoder


def _reasoning_shown(events: list[dict[str, Any]]) -> list[object]:
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    completed = events[-1]["response"]["output"]
    return [item.get("encrypted_content") for item in [*done, *completed]
            if item["type"] == "reasoning"]


def test_a_stored_stream_shows_the_state_only_when_asked() -> None:
    events, encoder = _streamed(())
    assert _reasoning_shown(events) == [None, None]
    assert encoder.final is not None
    assert isinstance(encoder.final["output"][0]["encrypted_content"], str)  # for the store
    events, _ = _streamed((INCLUDE,))
    assert all(isinstance(blob, str) for blob in _reasoning_shown(events))
