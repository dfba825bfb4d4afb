"""OpenAI's web search in Chat Completions: `web_search_options` sent only for a request that
asks for a search, and `url_citation` annotations (whole and streamed, nested as OpenAI
sends them or flat) read into canonical Grounding, with the search counted."""

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
    StreamEvent,
    TextPart,
    UsageReported,
    WebSearchTool,
)
from cometgate.dialects.openai.upstream_request import (
    decode_response,
    decode_stream,
    encode_request,
)
from cometgate.dialects.sse_decode import SSEFrame

ASK = GenerateRequest("m", (Message("user", (TextPart("Where is Köln?"),)),))
SEARCH = GenerateRequest("m", ASK.messages, web_search=WebSearchTool())
TEXT = "Köln liegt am Rhein. Mehr weiß ich nicht."
URL = "https://example.com/koeln"
NESTED = {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": 20,
                                                   "url": URL, "title": "Köln"}}
FLAT = {"type": "url_citation", "start_index": 21, "end_index": 41, "url": URL}


def test_web_search_options_only_for_a_search() -> None:
    assert encode_request(SEARCH, "gpt-search", stream=False).body["web_search_options"] == {}
    assert "web_search_options" not in encode_request(ASK, "gpt", stream=False).body


def answer(annotations: list[Any]) -> bytes:
    return orjson.dumps({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-search",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": TEXT, "annotations": annotations}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})


def test_citations_become_grounding_and_the_search_is_counted() -> None:
    response = decode_response(answer([NESTED, FLAT, {"type": "file_citation"}, "x"]),
                               SEARCH, "m")
    (candidate,) = response.candidates
    assert candidate.grounding == Grounding((), (Citation(0, 20, URL, "Köln"),
                                                 Citation(21, 41, URL, "")))
    assert TEXT[0:20] == "Köln liegt am Rhein."
    assert response.usage.searches == 1


def test_no_search_asked_means_no_grounding_and_no_search() -> None:
    response = decode_response(answer([NESTED]), ASK, "m")
    assert response.candidates[0].grounding is None and response.usage.searches == 0


def test_a_search_that_cites_nothing_has_no_grounding() -> None:
    response = decode_response(answer([]), SEARCH, "m")
    assert response.candidates[0].grounding is None and response.usage.searches == 1


async def frames(*chunks: dict[str, Any]) -> AsyncIterator[SSEFrame]:
    for chunk in chunks:
        yield SSEFrame(data=orjson.dumps(chunk).decode())
    yield SSEFrame(data="[DONE]")


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "g",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


async def test_streamed_citations_arrive_with_the_finish() -> None:
    events: list[StreamEvent] = [event async for event in decode_stream(frames(
        chunk({"role": "assistant", "content": TEXT[:10]}),
        chunk({"content": TEXT[10:]}),
        chunk({"annotations": [NESTED]}),
        chunk({}, "stop"),
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "g",
         "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4,
                                  "total_tokens": 7}},
    ), SEARCH, "m")]
    (finished,) = [e for e in events if isinstance(e, CandidateFinished)]
    assert finished.grounding == Grounding((), (Citation(0, 20, URL, "Köln"),))
    (usage,) = [e for e in events if isinstance(e, UsageReported)]
    assert usage.usage.searches == 1
