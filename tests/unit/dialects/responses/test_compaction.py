"""The compaction codec: what the summarising request holds, which messages a compaction
keeps, and that a compaction item opens only under the secret that sealed it."""

from __future__ import annotations

import pytest

from cometgate.canonical import Candidate, GenerateResponse, ReasoningPart, TextPart, Usage
from cometgate.dialects.responses.compaction import (
    SUMMARY_REQUEST,
    compacted_body,
    compaction_item,
    opened_summary,
    summarising_document,
)
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import InvalidRequest

SEAL = StateSeal(b"a gateway secret of enough bytes")
OTHER = StateSeal(b"another gateway secret, not ours")


def test_the_summarising_request_is_the_conversation_then_the_ask() -> None:
    asked = summarising_document({"model": "m", "input": "Hi", "instructions": "Be brief.",
                                  "previous_response_id": "resp_1"})
    assert asked == {"model": "m", "instructions": "Be brief.", "store": False, "input": [
        {"type": "message", "role": "user", "content": "Hi"},
        {"type": "message", "role": "user", "content": SUMMARY_REQUEST}]}


def test_the_callers_tools_go_along_not_to_be_called() -> None:
    tools = [{"type": "function", "name": "shell", "parameters": {"type": "object"}}]
    asked = summarising_document({"model": "m", "input": "Hi", "tools": tools,
                                  "tool_choice": "required"})
    assert (asked["tools"], asked["tool_choice"]) == (tools, "none")


def test_the_answer_keeps_user_messages_and_seals_the_text_of_the_summary() -> None:
    response = GenerateResponse(
        model_version="m", response_id="r", created=0.0, usage=Usage(3, 2),
        candidates=(Candidate((ReasoningPart("thinking it over"), TextPart("Short "),
                               TextPart("summary.")), None),))
    body = compacted_body({"input": [
        {"role": "user", "content": "one", "id": "msg_1"},
        {"role": "assistant", "content": "two"},
        {"type": "function_call_output", "call_id": "c", "output": "x"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "3"}]},
    ]}, response, SEAL, 1_700_000_000)
    *users, item = body["output"]
    assert [u["content"] for u in users] == [[{"type": "input_text", "text": "one"}],
                                             [{"type": "input_text", "text": "3"}]]
    assert users[0]["id"] == "msg_1"
    assert opened_summary(SEAL, item, "input[0]") == "Short summary."
    assert (body["created_at"], body["usage"]["total_tokens"]) == (1_700_000_000, 5)


@pytest.mark.parametrize(("seal", "token", "reason"), [
    (OTHER, None, "sealed by another gateway secret"),
    (None, None, "keeps no secret"),
    (SEAL, 42, "expected a string"),
    (SEAL, "not-a-token", "too short"),
])
def test_an_item_that_does_not_open_is_refused_naming_it(
    seal: StateSeal | None, token: object, reason: str
) -> None:
    item = compaction_item("secret summary", SEAL)
    if token is not None:
        item["encrypted_content"] = token
    with pytest.raises(InvalidRequest, match=reason) as caught:
        opened_summary(seal, item, "input[3]")
    assert list(caught.value.violations) == ["input[3].encrypted_content"]
