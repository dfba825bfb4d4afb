"""The request frame serves every dialect's generate request with one model lookup: the
route found as the request is read is the one admission and the attempts use."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cometgate.routing.resolve import ModelRoute, Router
from tests.api.bodies import GENERATE, SMOL, STREAM, text_body
from tests.fakes.openai_upstream import FakeOpenAIUpstream, Reply

CHAT = {"model": SMOL, "messages": [{"role": "user", "content": "Hello"}]}
MESSAGES = {"model": SMOL, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}
RESPONSES = {"model": SMOL, "input": "Hello", "store": False}


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every model name the router resolves, in order."""
    names: list[str] = []
    original = Router.resolve

    def counting(self: Router, name: str) -> ModelRoute | None:
        names.append(name)
        return original(self, name)

    monkeypatch.setattr(Router, "resolve", counting)
    return names


@pytest.mark.parametrize(("path", "body"), [
    (GENERATE, text_body()),
    (f"{STREAM}?alt=sse", text_body()),
    ("/v1/chat/completions", CHAT),
    ("/v1/chat/completions", {**CHAT, "stream": True}),
    ("/v1/messages", MESSAGES),
    ("/v1/responses", RESPONSES),
], ids=["gemini", "gemini-stream", "openai", "openai-stream", "anthropic", "responses"])
async def test_one_model_lookup_per_generate_request(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, resolved: list[str],
    path: str, body: dict[str, Any],
) -> None:
    upstream.replies.append(Reply(text="Hi there.", prompt_tokens=3, completion_tokens=2))
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert resolved == [SMOL]


async def test_an_unknown_model_is_looked_up_once_and_refused_in_the_dialects_words(
    client: httpx.AsyncClient, resolved: list[str],
) -> None:
    response = await client.post("/v1/messages", json={**MESSAGES, "model": "nope"})
    assert response.status_code == 404
    assert response.json()["error"] == {"type": "not_found_error", "message": "model: nope"}
    assert resolved == ["nope"]
