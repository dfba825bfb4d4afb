"""Anthropic's web search server tool: the tool sent for a canonical web search, and its
answer (server_tool_use, web_search_tool_result, text blocks citing the results) read as
canonical Grounding, whole and streamed, offsets in characters of a non-ASCII text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from cometgate.canonical import (
    CandidateFinished,
    Citation,
    GenerateRequest,
    Grounding,
    Message,
    TextPart,
    WebSearchTool,
)
from cometgate.dialects.anthropic.upstream_request import encode_request
from cometgate.dialects.anthropic.upstream_response import decode_response
from cometgate.dialects.anthropic.upstream_stream import decode_stream
from cometgate.dialects.sse_decode import SSEFrame

ASKED = GenerateRequest(model="m", messages=(Message("user", (TextPart("Köln?"),)),),
                        web_search=WebSearchTool())
URL = "https://example.com/köln"
FIRST, SECOND = "Köln 🏰 liegt am Rhein. ", "Groß ist es."


def cite(text: str) -> dict[str, Any]:
    return {"type": "web_search_result_location", "url": URL, "title": "Köln",
            "encrypted_index": "RQ==", "cited_text": text}


CONTENT: list[dict[str, Any]] = [
    {"type": "text", "text": "Ich suche. "},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
     "input": {"query": "Köln Rhein"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
        {"type": "web_search_result", "url": URL, "title": "Köln",
         "encrypted_content": "RQ==", "page_age": None}]},
    {"type": "text", "text": FIRST, "citations": [cite(FIRST)]},
    {"type": "text", "text": SECOND, "citations": [cite(SECOND), {"type": "char_location"}]},
]
WHOLE = "Ich suche. " + FIRST + SECOND
EXPECTED = Grounding(("Köln Rhein",), (
    Citation(11, 11 + len(FIRST), URL, "Köln"),
    Citation(11 + len(FIRST), len(WHOLE), URL, "Köln"),
))


def test_a_web_search_is_sent_as_the_server_tool() -> None:
    assert encode_request(ASKED, "claude", stream=False).body["tools"] == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    bounded = GenerateRequest(model="m", messages=ASKED.messages,
                              web_search=WebSearchTool(max_uses=2))
    assert encode_request(bounded, "claude", stream=False).body["tools"][0]["max_uses"] == 2


def test_a_whole_answer_carries_its_grounding() -> None:
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
              "content": CONTENT, "stop_reason": "end_turn",
              "usage": {"input_tokens": 5, "output_tokens": 9,
                        "server_tool_use": {"web_search_requests": 1}}}
    decoded = decode_response(orjson.dumps(answer), ASKED, "m")
    assert decoded.usage.searches == 1  # billed apart from the tokens
    candidate = decoded.candidates[0]
    assert "".join(p.text for p in candidate.parts if isinstance(p, TextPart)) == WHOLE
    assert candidate.grounding == EXPECTED
    assert WHOLE[EXPECTED.citations[1].start:EXPECTED.citations[1].end] == SECOND


def stream_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}]
    for index, block in enumerate(CONTENT):
        start = {**block, "text": ""} if block["type"] == "text" else block
        if block["type"] == "server_tool_use":
            start = {**block, "input": {}}
        if "citations" in block:
            start = {**start, "citations": []}
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        deltas: list[dict[str, Any]] = []
        if block["type"] == "text":
            deltas += [{"type": "citations_delta", "citation": c}
                       for c in block.get("citations", ())]
            text = block["text"]
            deltas += [{"type": "text_delta", "text": text[:5]},
                       {"type": "text_delta", "text": text[5:]}]
        if block["type"] == "server_tool_use":
            deltas += [{"type": "input_json_delta", "partial_json": ""},
                       {"type": "input_json_delta", "partial_json": '{"query": "Köln Rhein"}'}]
        events += [{"type": "content_block_delta", "index": index, "delta": delta}
                   for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    return [*events, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                      "usage": {"output_tokens": 9}}, {"type": "message_stop"}]


async def frames() -> AsyncIterator[SSEFrame]:
    for event in stream_events():
        yield SSEFrame(orjson.dumps(event).decode(), event=event["type"])


async def test_a_stream_grounds_the_text_at_its_end() -> None:
    events = [event async for event in decode_stream(frames(), ASKED, "m")]
    [finished] = [event for event in events if isinstance(event, CandidateFinished)]
    assert finished.grounding == EXPECTED


async def test_an_answer_without_a_search_has_no_grounding() -> None:
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
              "content": [{"type": "text", "text": "Hallo."}], "stop_reason": "end_turn",
              "usage": {"input_tokens": 5, "output_tokens": 2}}
    assert decode_response(orjson.dumps(answer), ASKED, "m").candidates[0].grounding is None
