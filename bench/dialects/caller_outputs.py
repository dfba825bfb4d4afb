"""Reads back what a translation produced for the caller, so that a pair is timed only once it
is known to carry the answer: the text and the output token count, in the caller's dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Reading = tuple[str, int | None]  # (the answer's text, output tokens)


def answer_reading(dialect: str, body: bytes) -> Reading:
    document = orjson.loads(body)
    if dialect == "gemini":
        parts = document["candidates"][0]["content"]["parts"]
        return "".join(p.get("text", "") for p in parts), \
            document["usageMetadata"].get("candidatesTokenCount")
    if dialect == "openai":
        return document["choices"][0]["message"]["content"], \
            document["usage"]["completion_tokens"]
    blocks = document["content"]
    return "".join(b["text"] for b in blocks if b["type"] == "text"), \
        document["usage"]["output_tokens"]


def stream_reading(dialect: str, pieces: list[bytes]) -> Reading:
    readers: dict[str, Callable[[list[dict[str, Any]]], Reading]] = {
        "gemini": _gemini_stream, "openai": _openai_stream, "anthropic": _anthropic_stream}
    return readers[dialect](_events(b"".join(pieces)))


def _events(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[len(b"data: "):]) for line in body.splitlines()
            if line.startswith(b"data: ") and line != b"data: [DONE]"]


def _gemini_stream(events: list[dict[str, Any]]) -> Reading:
    text, tokens = "", None
    for event in events:
        for candidate in event.get("candidates", ()):
            text += "".join(p.get("text", "") for p in candidate["content"].get("parts", ()))
        tokens = event.get("usageMetadata", {}).get("candidatesTokenCount", tokens)
    return text, tokens


def _openai_stream(events: list[dict[str, Any]]) -> Reading:
    text, tokens = "", None
    for event in events:
        for choice in event["choices"]:
            text += choice["delta"].get("content") or ""
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
    return text, tokens


def _anthropic_stream(events: list[dict[str, Any]]) -> Reading:
    text, tokens = "", None
    for event in events:
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            text += event["delta"]["text"]
        elif event["type"] == "message_delta":
            tokens = event["usage"]["output_tokens"]
    return text, tokens
