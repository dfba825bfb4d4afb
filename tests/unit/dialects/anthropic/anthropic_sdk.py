"""The real `anthropic` SDK, wired to an in-process handler instead of the network: what it
sends is captured, what the handler answers is read exactly as the SDK reads Anthropic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import orjson

Answer = Callable[[dict[str, Any]], httpx2.Response]


def client(answer: Answer, sent: list[dict[str, Any]] | None = None) -> anthropic.Anthropic:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = orjson.loads(request.content)
        if sent is not None:
            sent.append(body)
        return answer(body)

    transport = httpx2.MockTransport(handle)
    return anthropic.Anthropic(api_key="sk-test", base_url="http://127.0.0.1:9",
                               max_retries=0, http_client=httpx2.Client(transport=transport))


def json_answer(body: bytes, status: int = 200) -> Answer:
    return lambda _: httpx2.Response(status, content=body,
                                     headers={"content-type": "application/json"})


def sse_answer(frames: list[bytes]) -> Answer:
    return lambda _: httpx2.Response(200, content=b"".join(frames),
                                     headers={"content-type": "text/event-stream"})


def sent_body(**create: Any) -> dict[str, Any]:
    """The JSON body the SDK sends for `messages.create(**create)`."""
    sent: list[dict[str, Any]] = []
    minimal = (b'{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],'
               b'"stop_reason":"end_turn","stop_sequence":null,'
               b'"usage":{"input_tokens":1,"output_tokens":1}}')
    client(json_answer(minimal), sent).messages.create(**create)
    return sent[0]
