"""Request bodies and paths the API tests share."""

from __future__ import annotations

from typing import Any

import orjson

SMOL = "smollm2-135m-instruct"
GENERATE = f"/v1beta/models/{SMOL}:generateContent"
STREAM = f"/v1beta/models/{SMOL}:streamGenerateContent"
COUNT = f"/v1beta/models/{SMOL}:countTokens"
JSON_TYPE = "application/json; charset=UTF-8"
PNG_BASE64 = "iVBORw0KGgo="  # the PNG signature: enough to be an image/png blob


def text_body(text: str = "Hello") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def with_config(**generation_config: Any) -> dict[str, Any]:
    return {**text_body(), "generationConfig": generation_config}


WEATHER_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"city": {"type": "STRING"}},
                    "required": ["city"],
                },
            },
            {"name": "get_time", "parametersJsonSchema": {"type": "object"}},
        ]
    }
]


def error_of(content: bytes) -> dict[str, Any]:
    """The `error` object of a Gemini error envelope, checking the envelope's shape."""
    document = orjson.loads(content)
    assert list(document) == ["error"]
    error: dict[str, Any] = document["error"]
    assert isinstance(error["code"], int) and isinstance(error["message"], str)
    return error
