"""Timed calls over loopback HTTP: the gateway's Gemini endpoints and the worker's own OpenAI
stream. Every function returns a Timing measured on the client side, from just before the
request is sent.

"First token" is the arrival of the first event that carries generated text; "last" is the
arrival of the last such event. The same rule is applied to the direct baseline.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from direct_llama import TEMPERATURE, TOP_K, TOP_P


@dataclass(frozen=True, slots=True)
class Timing:
    wall: float  # request sent → response complete
    text: str
    tokens: int | None = None  # generated tokens, as the server reports them
    prompt_tokens: int | None = None
    ttft: float | None = None  # streams only
    first_to_last: float | None = None  # streams only
    started: float = 0.0  # perf_counter at send, to line concurrent requests up


def gemini_body(prompt: str, max_tokens: int, seed: int) -> bytes:
    return orjson.dumps({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"temperature": TEMPERATURE, "topP": TOP_P, "topK": TOP_K,
                             "seed": seed, "maxOutputTokens": max_tokens},
    })


def worker_body(model: str, prompt: str, max_tokens: int, seed: int) -> bytes:
    return orjson.dumps({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": TEMPERATURE, "top_p": TOP_P, "top_k": TOP_K, "seed": seed,
        "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
    })


class GatewayClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, key: str, model: str) -> None:
        self._client = client
        self._headers = {"x-goog-api-key": key, "content-type": "application/json"}
        self._url = f"{base_url}/v1beta/models/{model}"

    async def generate(self, body: bytes) -> Timing:
        started = time.perf_counter()
        response = await self._client.post(f"{self._url}:generateContent", content=body,
                                           headers=self._headers)
        wall = time.perf_counter() - started
        answer = _checked_json(response)
        usage = answer.get("usageMetadata", {})
        return Timing(wall, _gemini_text(answer), usage.get("candidatesTokenCount"),
                      usage.get("promptTokenCount"), started=started)

    async def stream(self, body: bytes) -> Timing:
        clock = _StreamClock()
        usage: dict[str, Any] = {}
        url = f"{self._url}:streamGenerateContent?alt=sse"
        async with self._client.stream("POST", url, content=body,
                                       headers=self._headers) as response:
            await _raise_for_status(response)
            async for event in _sse_events(response):
                clock.saw(_gemini_text(event))
                usage = event.get("usageMetadata", usage)
        return clock.timing(usage.get("candidatesTokenCount"), usage.get("promptTokenCount"))


async def worker_stream(client: httpx.AsyncClient, port: int, body: bytes) -> Timing:
    """The worker's own OpenAI endpoint, called as the gateway calls it."""
    clock = _StreamClock()
    usage: dict[str, Any] = {}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with client.stream("POST", url, content=body,
                             headers={"content-type": "application/json"}) as response:
        await _raise_for_status(response)
        async for event in _sse_events(response):
            for choice in event.get("choices") or []:
                clock.saw(choice.get("delta", {}).get("content") or "")
            usage = event.get("usage") or usage
    return clock.timing(usage.get("completion_tokens"), usage.get("prompt_tokens"))


class _StreamClock:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.text = ""

    def saw(self, text: str) -> None:
        if text:
            self.last = time.perf_counter()
            self.first = self.first if self.first is not None else self.last
            self.text += text

    def timing(self, tokens: int | None, prompt_tokens: int | None) -> Timing:
        wall = time.perf_counter() - self.started
        first, last = self.first, self.last
        return Timing(
            wall, self.text, tokens, prompt_tokens,
            ttft=None if first is None else first - self.started,
            first_to_last=None if first is None or last is None else last - first,
            started=self.started,
        )


async def _sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        event: dict[str, Any] = orjson.loads(payload)
        if "error" in event:
            raise RuntimeError(f"error event in stream: {payload[:300]}")
        yield event


def _gemini_text(answer: dict[str, Any]) -> str:
    texts = []
    for candidate in answer.get("candidates") or []:
        for part in candidate.get("content", {}).get("parts") or []:
            texts.append(part.get("text") or "")
    return "".join(texts)


def _checked_json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    answer: dict[str, Any] = orjson.loads(response.content)
    return answer


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        body = await response.aread()
        raise RuntimeError(f"HTTP {response.status_code}: {body[:300]!r}")
