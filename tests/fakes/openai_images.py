"""The Images API of the fake OpenAI upstream: `POST /v1/images/generations` (JSON) and
`POST /v1/images/edits` (multipart), answering as gpt-image does —
`{"created", "data": [{"b64_json", "revised_prompt"}], "usage": {"input_tokens",
"output_tokens", "total_tokens", "input_tokens_details": {"text_tokens", "image_tokens"}}}`
— with real PNG files it draws: one colour taken from the prompt, a side of 1/64 of the size
asked for (16 by 16 for 1024x1024), so a test can tell what reached the upstream. Refusals in
OpenAI's envelope, as its reference words them, for a missing prompt or image, an `n` out of
1..10, and a `response_format` sent to a gpt-image model (which takes none)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from tests.fakes.png import png

IMAGE_TOKENS = 272  # gpt-image's output tokens for one low-quality square picture
MAX_N = 10


@dataclass(frozen=True)
class ImageCall:
    """What one images request carried: its fields and, for an edit, its files as
    (field name, content type, bytes)."""

    path: str
    fields: dict[str, Any]
    files: list[tuple[str, str, bytes]]


async def read_call(request: Request) -> ImageCall:
    if request.url.path.endswith("/edits"):
        fields: dict[str, Any] = {}
        files: list[tuple[str, str, bytes]] = []
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.append((name, value.content_type or "", await value.read()))
                else:
                    fields[name] = value
        return ImageCall(request.url.path, fields, files)
    return ImageCall(request.url.path, orjson.loads(await request.body()), [])


def refusal(call: ImageCall) -> tuple[str, str] | None:
    """(message, param) of OpenAI's 400 for this call, or None."""
    if str(call.fields.get("model", "")).startswith("gpt-image") and (
            "response_format" in call.fields):
        return "Unknown parameter: 'response_format'.", "response_format"
    if not call.fields.get("prompt"):
        return "Missing required parameter: 'prompt'.", "prompt"
    if call.path.endswith("/edits") and not call.files:
        return "Missing required parameter: 'image'.", "image"
    n = int(call.fields.get("n", 1))
    if not 1 <= n <= MAX_N:
        return (f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but "
                f"got {n} instead."), "n"
    return None


def answer(call: ImageCall) -> dict[str, Any]:
    prompt = str(call.fields["prompt"])
    n = int(call.fields.get("n", 1))
    width, height = _side(call.fields.get("size"))
    colour = tuple(hashlib.sha256(prompt.encode()).digest()[:3])
    picture = base64.b64encode(png(width, height, (colour[0], colour[1], colour[2]))).decode()
    text_tokens = len(prompt.split())
    image_tokens = 65 * len(call.files)
    return {
        "created": 1_700_000_000,
        "data": [{"b64_json": picture, "revised_prompt": f"A picture of {prompt}"}
                 for _ in range(n)],
        "usage": {"input_tokens": text_tokens + image_tokens,
                  "output_tokens": IMAGE_TOKENS * n,
                  "total_tokens": text_tokens + image_tokens + IMAGE_TOKENS * n,
                  "input_tokens_details": {"text_tokens": text_tokens,
                                           "image_tokens": image_tokens}},
    }


def _side(size: object) -> tuple[int, int]:
    if not isinstance(size, str) or "x" not in size:
        return 16, 16
    width, height = (int(v) for v in size.split("x"))
    return width // 64, height // 64
