"""Google Search grounding: the googleSearch tool sent for a canonical web search, and the
answer's groundingMetadata read as canonical Grounding, whole and streamed, with Google's UTF-8
byte offsets turned into character offsets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from tests.fakes.gemini_upstream import SEARCH_PAGE, grounding_for

from cometgate.canonical import (
    CandidateFinished,
    Citation,
    GenerateRequest,
    Grounding,
    Message,
    TextPart,
    WebSearchTool,
)
from cometgate.dialects.gemini.upstream_grounding import grounding_of
from cometgate.dialects.gemini.upstream_request import encode_request
from cometgate.dialects.gemini.upstream_response import decode_response, decode_stream
from cometgate.dialects.sse_decode import SSEFrame

TEXT = "Über 1 Mio. Menschen. Köln ist groß 🏰."
ASKED = GenerateRequest(model="m", messages=(Message("user", (TextPart("Köln?"),)),),
                        web_search=WebSearchTool())


def span(text: str, piece: str) -> tuple[int, int]:
    start = text.index(piece)
    return start, start + len(piece)


def test_a_web_search_is_sent_as_the_google_search_tool() -> None:
    body = encode_request(ASKED, "m", stream=False).body
    assert body["tools"] == [{"googleSearch": {}}]
    plain = GenerateRequest(model="m", messages=ASKED.messages)
    assert "tools" not in encode_request(plain, "m", stream=False).body


def test_byte_offsets_become_character_offsets() -> None:
    metadata = grounding_for(TEXT, "Köln")
    grounding = grounding_of(metadata, TEXT)
    assert grounding is not None and grounding.queries == ("Köln",)
    starts = [(c.start, c.end) for c in grounding.citations]
    # "Mio." ends a sentence for the fake: each sentence's characters, not its bytes
    assert [TEXT[a:b] for a, b in starts] == ["Über 1 Mio.", "Menschen.", "Köln ist groß 🏰."]
    assert all(c.url == SEARCH_PAGE and c.title == "example.com" for c in grounding.citations)


def test_what_cites_nothing_a_caller_can_open_is_left_out() -> None:
    metadata: dict[str, Any] = {
        "groundingChunks": [{"retrievedContext": {"uri": "gs://x"}}, {"web": {"uri": "u"}}],
        "groundingSupports": [
            {"segment": {"endIndex": 3}, "groundingChunkIndices": [0, 1, 7]},
            {"segment": {"startIndex": 3, "endIndex": 3}, "groundingChunkIndices": [1]},
        ]}
    assert grounding_of(metadata, "abcdef") == Grounding((), (Citation(0, 3, "u", ""),))
    assert grounding_of({"searchEntryPoint": {}}, "abc") is None
    assert grounding_of(None, "abc") is None


def test_a_whole_answer_carries_its_grounding() -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": TEXT}]},
                              "finishReason": "STOP",
                              "groundingMetadata": grounding_for(TEXT, "Köln")}]}
    candidate = decode_response(orjson.dumps(answer), ASKED, "m").candidates[0]
    assert candidate.grounding is not None
    assert (candidate.grounding.citations[2].start,
            candidate.grounding.citations[2].end) == span(TEXT, "Köln ist groß 🏰.")


async def frames(*chunks: dict[str, Any]) -> AsyncIterator[SSEFrame]:
    for chunk in chunks:
        yield SSEFrame(orjson.dumps(chunk).decode())


async def test_a_stream_grounds_the_whole_text_at_its_end() -> None:
    head, tail = TEXT[:14], TEXT[14:]  # cut inside a sentence
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": head}]},
                               "index": 0}], "responseId": "r"},
              {"candidates": [{"content": {"role": "model", "parts": [{"text": tail}]},
                               "index": 0, "finishReason": "STOP",
                               "groundingMetadata": grounding_for(TEXT, "Köln")}],
               "responseId": "r"}]
    events = [event async for event in decode_stream(frames(*chunks), ASKED, "m")]
    [finished] = [event for event in events if isinstance(event, CandidateFinished)]
    assert finished.grounding is not None
    assert [TEXT[c.start:c.end] for c in finished.grounding.citations][1] == "Menschen."
