"""The real `openai` SDK wired to an in-process handler (httpx.MockTransport): what it sends
is what a caller's SDK sends, and what it parses proves the SDK can read our bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import orjson

Handler = Callable[[httpx.Request], httpx.Response]


def sdk_client(handler: Handler) -> openai.OpenAI:
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0,
                         http_client=httpx.Client(transport=transport))


def answering(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": content_type})
    return handler


def sent_body(call: Callable[[openai.OpenAI], Any]) -> dict[str, Any]:
    """The JSON body the SDK sends for `call`, answered with an empty completion."""
    captured: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(orjson.loads(request.content))
        return httpx.Response(200, json={
            "id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [],
        })

    call(sdk_client(handler))
    assert len(captured) == 1
    return captured[0]
