"""The Responses API's built-in `web_search` tool, translated for the upstreams that have a
search of their own, over real loopback sockets to the fake upstreams: the search's
`web_search_call` item and the answer's `url_citation` annotations, whole and streamed, each
parsed by the openai SDK's own types; and the refusal on a model whose upstream has none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.contract.conftest import (
    SECRETS,
    Fakes,
    Gateway,
    contract_config,
    running_fakes,
    running_gateway,
    settings_for,
)
from tests.contract.scenarios import received
from tests.fakes import anthropic_upstream as anthropic
from tests.fakes import gemini_upstream as gemini

EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
# Non-ASCII, so that Google's byte offsets differ from the characters OpenAI counts.
ANSWER = "Köln liegt am Rhein. Die Domstadt zählt eine Million Einwohner."
FIRST, SECOND = "Köln liegt am Rhein.", "Die Domstadt zählt eine Million Einwohner."
KINDS = ("gemini", "anthropic")
QUERY = "Köln Einwohner"
# What each kind's upstream received for the search.
SENT_TOOL = {"gemini": {"googleSearch": {}},
             "anthropic": {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}}
PAGE = {"gemini": (gemini.SEARCH_PAGE, "example.com"),
        "anthropic": (anthropic.SEARCH_PAGE, anthropic.SEARCH_TITLE)}


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with running_fakes() as running:
        yield running


@pytest.fixture
async def gateway(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(settings_for(tmp_path, contract_config(fakes),
                                            SECRETS)) as running:
        yield running


def searching(kind: str, tool: str = "web_search", **extra: Any) -> dict[str, Any]:
    return {"model": f"{kind}-text", "input": "Tell me about Cologne.",
            "tools": [{"type": tool}], **extra}


def script_search(kind: str, fakes: Fakes) -> None:
    if kind == "gemini":
        fakes.gemini.replies.append(gemini.Reply(text=ANSWER, search_query=QUERY))
    else:
        fakes.anthropic.replies.append(anthropic.Reply(text=ANSWER, search_query=QUERY))


def searched(kind: str, fakes: Fakes) -> list[dict[str, Any]]:
    return fakes.gemini.searched if kind == "gemini" else fakes.anthropic.searched


def expected_citations(kind: str) -> list[dict[str, Any]]:
    """Gemini cites each sentence; Anthropic each text block, which holds a sentence and
    the space after it."""
    second = ANSWER.index(SECOND)
    first_end = len(FIRST) if kind == "gemini" else second
    url, title = PAGE[kind]
    return [
        {"type": "url_citation", "start_index": 0, "end_index": first_end,
         "url": url, "title": title},
        {"type": "url_citation", "start_index": second, "end_index": second + len(SECOND),
         "url": url, "title": title},
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", ["web_search", "web_search_preview"])
async def test_a_search_is_a_search_item_and_citations(
        gateway: Gateway, fakes: Fakes, kind: str, tool: str) -> None:
    script_search(kind, fakes)
    response = await gateway.http.post("/v1/responses", json=searching(kind, tool))
    assert response.status_code == 200, response.text
    body = response.json()
    parsed = Response.model_validate(body)
    assert received(kind, fakes)["tools"] == [SENT_TOOL[kind]]
    assert len(searched(kind, fakes)) == 1
    search, message = body["output"]
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    assert search["id"].startswith("ws_")
    assert search["action"] == {"type": "search", "query": QUERY}
    assert parsed.output_text == ANSWER
    assert message["content"][0]["annotations"] == expected_citations(kind)
    cited = expected_citations(kind)[1]
    assert ANSWER[cited["start_index"]:cited["end_index"]] == SECOND
    assert body["tools"][0]["type"] == tool


@pytest.mark.parametrize("kind", KINDS)
async def test_sources_come_when_include_asks(gateway: Gateway, fakes: Fakes,
                                              kind: str) -> None:
    script_search(kind, fakes)
    response = await gateway.http.post("/v1/responses", json=searching(
        kind, include=["web_search_call.action.sources"]))
    assert response.status_code == 200, response.text
    Response.model_validate(response.json())
    assert response.json()["output"][0]["action"]["sources"] == [
        {"type": "url", "url": PAGE[kind][0]}]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_streamed_search(gateway: Gateway, fakes: Fakes, kind: str) -> None:
    script_search(kind, fakes)
    response = await gateway.http.post("/v1/responses", json=searching(kind, stream=True))
    assert response.status_code == 200, response.text
    events = [orjson.loads(block.split("\ndata: ", 1)[1])
              for block in response.text.split("\n\n") if block.strip()]
    for event in events:
        EVENTS.validate_python(event)
    kinds = [event["type"] for event in events]
    added = [e["annotation"] for e in events
             if e["type"] == "response.output_text.annotation.added"]
    assert added == expected_citations(kind)
    assert kinds.index("response.output_text.annotation.added") < kinds.index(
        "response.output_text.done")
    part_done = next(e for e in events if e["type"] == "response.content_part.done")
    assert part_done["part"]["annotations"] == expected_citations(kind)
    stages = [kind for kind in kinds if kind.startswith("response.web_search_call.")]
    assert stages == ["response.web_search_call.in_progress",
                      "response.web_search_call.searching",
                      "response.web_search_call.completed"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [item["type"] for item in done] == ["message", "web_search_call"]
    assert done[0]["content"][0]["annotations"] == expected_citations(kind)
    final = events[-1]
    assert final["type"] == "response.completed"
    output = Response.model_validate(final["response"]).output
    assert [item.type for item in output] == ["message", "web_search_call"]
    assert final["response"]["output"][1]["action"]["query"] == QUERY
    assert final["response"]["output"][0]["content"][0]["text"] == ANSWER


async def test_a_search_on_a_model_without_one_is_refused(gateway: Gateway,
                                                          fakes: Fakes) -> None:
    requests = len(fakes.openai.requests)
    response = await gateway.http.post("/v1/responses", json=searching("openai"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "tools"
    assert error["message"].startswith(
        "The built-in tool 'web_search' is not available on models/openai-text: none of "
        "its upstreams runs a web search (Gemini and Anthropic models do). Models that have "
        "it here: ")
    able = error["message"].rsplit(": ", 1)[1]
    assert "gemini-text" in able and "anthropic-text" in able and "openai-text" not in able
    assert len(fakes.openai.requests) == requests  # nothing was sent


async def test_a_search_setting_only_openai_has_is_dropped_and_named(
        gateway: Gateway, fakes: Fakes) -> None:
    script_search("gemini", fakes)
    response = await gateway.http.post("/v1/responses", json={
        **searching("gemini"), "tools": [{"type": "web_search", "search_context_size": "high",
                                          "user_location": {"type": "approximate",
                                                            "city": "Köln"}}]})
    assert response.status_code == 200, response.text
    assert response.headers["x-cometgate-dropped"] == (
        "tools[0].search_context_size,tools[0].user_location")
    assert received("gemini", fakes)["tools"] == [{"googleSearch": {}}]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_search_replayed_as_input_is_skipped(gateway: Gateway, fakes: Fakes,
                                                     kind: str) -> None:
    """A stateless client (Codex) sends the answer's items back, the search item among
    them: the search is over, the text it grounded goes back as the assistant's turn."""
    script_search(kind, fakes)
    first = await gateway.http.post("/v1/responses", json=searching(kind, store=False))
    assert first.status_code == 200, first.text
    replay = [*first.json()["output"], {"role": "user", "content": "And Bonn?"}]
    assert replay[0]["type"] == "web_search_call"
    second = await gateway.http.post("/v1/responses", json=searching(kind, input=replay))
    assert second.status_code == 200, second.text
    assert ANSWER in str(received(kind, fakes)["contents" if kind == "gemini" else "messages"])
