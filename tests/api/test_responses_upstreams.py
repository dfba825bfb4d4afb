"""Responses callers reaching each kind of upstream through the canonical model, in process
over real loopback sockets: reasoning from an Anthropic or Gemini model comes back as a
reasoning item (whole) and as the reasoning_summary events (streamed), each parsed by the
openai SDK's own types."""

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
from tests.contract.scenarios import SIGNED_PARTS, received, script_thinking
from tests.fakes import gemini_upstream as gemini

EVENTS = TypeAdapter[ResponseStreamEvent](ResponseStreamEvent)
THINKING_KINDS = ("anthropic", "gemini")


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with running_fakes() as running:
        yield running


@pytest.fixture
async def gateway(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(settings_for(tmp_path, contract_config(fakes),
                                            SECRETS)) as running:
        yield running


def request(kind: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"{kind}-think", "input": "What is six times seven?",
            "reasoning": {"effort": "medium", "summary": "auto"}, **extra}


@pytest.mark.parametrize("kind", THINKING_KINDS)
async def test_reasoning_is_a_reasoning_item(gateway: Gateway, fakes: Fakes, kind: str) -> None:
    script_thinking(kind, fakes)
    response = await gateway.http.post("/v1/responses", json=request(kind))
    assert response.status_code == 200, response.text
    body = response.json()
    parsed = Response.model_validate(body)
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Six times seven."}]
    assert parsed.output_text == "42" and message["type"] == "message"
    if kind == "anthropic":
        assert received(kind, fakes)["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("kind", THINKING_KINDS)
async def test_streamed_reasoning_is_the_summary_events(gateway: Gateway, fakes: Fakes,
                                                        kind: str) -> None:
    if kind == "gemini":  # the Gemini fake streams only text: one raw SSE event holds both
        event = {"candidates": [{"content": {"role": "model", "parts": SIGNED_PARTS},
                                 "finishReason": "STOP", "index": 0}],
                 "modelVersion": "gemini-up"}
        fakes.gemini.replies.append(
            gemini.Reply(raw_body=b"data: " + orjson.dumps(event) + b"\r\n\r\n"))
    else:
        script_thinking(kind, fakes)
    response = await gateway.http.post("/v1/responses", json=request(kind, stream=True))
    assert response.status_code == 200, response.text
    events = [orjson.loads(block.split("\ndata: ", 1)[1])
              for block in response.text.split("\n\n") if block.strip()]
    for event in events:
        EVENTS.validate_python(event)
    kinds = [event["type"] for event in events]
    assert "response.reasoning_summary_part.added" in kinds
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index(
        "response.output_text.done")
    thought = "".join(e["delta"] for e in events
                      if e["type"] == "response.reasoning_summary_text.delta")
    assert thought == "Six times seven."
    final = events[-1]
    assert final["type"] == "response.completed"
    assert [item["type"] for item in final["response"]["output"]] == ["reasoning", "message"]
