"""`GET /v1/models` as Anthropic answers it: newest first, with cursor fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cometgate.canonical import ModelInfo

# Configured models carry no release date; a fixed epoch keeps the field well-formed.
_CREATED_AT = "1970-01-01T00:00:00Z"


def model_body(info: ModelInfo) -> dict[str, Any]:
    return {"type": "model", "id": info.id, "display_name": info.display_name,
            "created_at": _CREATED_AT}


def encode_model_list(infos: Sequence[ModelInfo]) -> bytes:
    data = [model_body(info) for info in infos]
    return orjson.dumps({
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    })


def encode_model(info: ModelInfo) -> bytes:
    return orjson.dumps(model_body(info))
