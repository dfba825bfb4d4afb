"""One request, written in each caller dialect as its official clients send it.

System instruction, a three-turn conversation (user, model, user), one function declaration and
generation parameters. The three bodies decode to the same canonical request (checked by
`pairs.same_canonical_request` before anything is timed), so every pair translates the same
content.
"""

from __future__ import annotations

from typing import Any

import orjson

MODEL = "bench-model"  # the name the caller asks for
SYSTEM = "You are a concise assistant for an operations team. Answer in plain prose."
TURNS = (
    "What does our gateway do when an upstream fails in the middle of a streamed answer?",
    "Once the first byte has reached the caller it cannot fail over any more, so it ends the "
    "stream with an error event written in the caller's own dialect.",
    "Is the weather in Zurich good enough for the outdoor release party tonight? Check before "
    "you answer, and say which unit you used.",
)
TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "Current weather for a city: temperature, wind and chance of rain."
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zurich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}
TEMPERATURE, TOP_P, MAX_TOKENS, STOP = 0.7, 0.95, 512, ["END"]


def gemini_request() -> bytes:
    """google-genai's shape: `parameters` as an OpenAPI schema with upper-case types, the
    system instruction with role "user". Streaming is in the path, not the body."""
    parameters = {
        "properties": {
            "city": {"type": "STRING", "description": "City name, e.g. Zurich"},
            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"], "format": "enum"},
        },
        "required": ["city"],
        "type": "OBJECT",
    }
    return orjson.dumps({
        "contents": [{"parts": [{"text": text}], "role": role}
                     for role, text in zip(("user", "model", "user"), TURNS, strict=True)],
        "systemInstruction": {"parts": [{"text": SYSTEM}], "role": "user"},
        "tools": [{"functionDeclarations": [{"description": TOOL_DESCRIPTION,
                                             "name": TOOL_NAME, "parameters": parameters}]}],
        "generationConfig": {"temperature": TEMPERATURE, "topP": TOP_P,
                             "maxOutputTokens": MAX_TOKENS, "stopSequences": STOP},
    })


def openai_request(*, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "system", "content": SYSTEM}] + [
            {"role": role, "content": text}
            for role, text in zip(("user", "assistant", "user"), TURNS, strict=True)],
        "tools": [{"type": "function", "function": {
            "name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_SCHEMA}}],
        "temperature": TEMPERATURE, "top_p": TOP_P, "max_tokens": MAX_TOKENS, "stop": STOP,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(body)


def anthropic_request(*, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": role, "content": text}
                     for role, text in zip(("user", "assistant", "user"), TURNS, strict=True)],
        "tools": [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                   "input_schema": TOOL_SCHEMA}],
        "temperature": TEMPERATURE, "top_p": TOP_P, "stop_sequences": STOP,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)
