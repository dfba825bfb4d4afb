"""`GET models` bodies: Model objects and paginated lists, and the countTokens reply."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from cometgate.canonical import BlobPart, FileRefPart, GenerateRequest, ModelInfo, ThinkingStyle
from cometgate.errors import InvalidRequest

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TOKEN_PREFIX = b"offset:"


# The built-in tools each model serves (googleSearch, urlContext, codeExecution, googleMaps,
# imageOutput) → "native", "emulated" or None, under a key of the gateway's own: the SDKs
# read only the Model fields they know, so an extra key leaves their parsing unchanged.
ToolsOf = Callable[[str], Mapping[str, str | None]]


def encode_model(info: ModelInfo, tools: Mapping[str, str | None] | None = None
                 ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"models/{info.id}",
        "baseModelId": info.base_model_id,
        "version": info.version,
        "displayName": info.display_name,
        "description": info.description,
        "inputTokenLimit": info.input_token_limit,
        "outputTokenLimit": info.output_token_limit,
        "supportedGenerationMethods": list(info.generation_methods),
    }
    optional = (
        ("temperature", info.temperature),
        ("maxTemperature", info.max_temperature),
        ("topP", info.top_p),
        ("topK", info.top_k),
    )
    out.update({key: value for key, value in optional if value is not None})
    out["thinking"] = info.thinking is not ThinkingStyle.NONE
    if tools is not None:
        out["cometgate"] = {"tools": dict(tools)}
    return out


def page_token(offset: int) -> str:
    """Opaque to callers; only this module reads it back."""
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + str(offset).encode()).decode()


def _offset_of(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    digits = raw.removeprefix(_TOKEN_PREFIX)
    if not raw.startswith(_TOKEN_PREFIX) or not digits.isdigit():
        raise InvalidRequest("Invalid page token.", violations={"page_token": "Invalid value."})
    return int(digits)


def encode_model_list(
    infos: Sequence[ModelInfo], page_size: int | None = None, page_token_text: str | None = None,
    tools_of: ToolsOf | None = None,
) -> dict[str, Any]:
    if page_size is not None and page_size < 0:
        raise InvalidRequest(
            "page_size must not be negative.", violations={"page_size": "must not be negative."}
        )
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = _offset_of(page_token_text) if page_token_text else 0
    end = start + size
    out: dict[str, Any] = {"models": [
        encode_model(info, None if tools_of is None else tools_of(info.id))
        for info in infos[start:end]]}
    if end < len(infos):
        out["nextPageToken"] = page_token(end)
    return out


def encode_count_tokens(total: int, *, text_only: bool = True) -> bytes:
    """Google's CountTokensResponse. The per-modality detail is given only for a prompt of
    text alone: a count from another upstream does not say how many of its tokens an image
    took."""
    out: dict[str, Any] = {"totalTokens": total}
    if total and text_only:
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": total}]
    return orjson.dumps(out)


def prompt_is_text(request: GenerateRequest) -> bool:
    """No image, audio, video or document anywhere in the prompt."""
    parts = [*request.system, *(part for message in request.messages for part in message.parts)]
    return not any(isinstance(part, BlobPart | FileRefPart) for part in parts)
