"""Reading one field of an Anthropic-dialect request, refused as Anthropic refuses it.

Anthropic validates bodies with pydantic and words a refusal as "<dotted path>: <text>"
("max_tokens: Field required", "messages.0.content.1.image.source: …"). Every refusal here is
an InvalidRequest with that message and one violation keyed by the same dotted path.
Numbers are read as pydantic's lax mode reads them: an integral float is an integer, a bool
is never a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.errors import InvalidRequest

REQUIRED = "Field required"
INT32_MAX = 2**31 - 1


def invalid(path: str, text: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {text}", violations={path: text})


def string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise invalid(path, REQUIRED if value is None else "Input should be a valid string")
    return value


def mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid(path, REQUIRED if value is None else "Input should be a valid dictionary")
    return value


def array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(path, REQUIRED if value is None else "Input should be a valid list")
    return value


def boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(path, "Input should be a valid boolean")
    return value


def integer(
    value: object, path: str, *, minimum: int | None = None, maximum: int = INT32_MAX,
) -> int:
    """Every count we read fits 32 bits: a larger one (`"top_k": 1e300`) would reach an
    upstream's encoder, which cannot write it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(path, REQUIRED if value is None else "Input should be a valid integer")
    if minimum is not None and value < minimum:
        raise invalid(path, f"Input should be greater than or equal to {minimum}")
    if value > maximum:
        raise invalid(path, f"Input should be less than or equal to {maximum}")
    return value


def number(value: object, path: str, *, low: float, high: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid(path, "Input should be a valid number")
    if value < low:
        raise invalid(path, f"Input should be greater than or equal to {low:g}")
    if value > high:
        raise invalid(path, f"Input should be less than or equal to {high:g}")
    return float(value)


def tagged(value: object, path: str, tags: tuple[str, ...]) -> tuple[Mapping[str, Any], str]:
    """A union member chosen by its "type" (pydantic's tagged unions), and that type."""
    fields = mapping(value, path)
    kind = fields.get("type")
    if kind is None:
        raise invalid(path, "Unable to extract tag using discriminator 'type'")
    if kind not in tags:
        expected = ", ".join(f"'{tag}'" for tag in tags)
        raise invalid(f"{path}.type", f"Input tag '{kind}' found using 'type' does not match "
                                      f"any of the expected tags: {expected}")
    return fields, str(kind)
