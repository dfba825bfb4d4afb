"""Typed reads of an OpenAI request's fields, refusing what OpenAI refuses in its own words.

Every refusal is an InvalidRequest whose first violation is keyed by the parameter as OpenAI
names it (`temperature`, `messages[2].content[0].image_url.url`): the OpenAI error encoder
turns that key into `error.param`. A JSON null counts as "not given", as OpenAI treats it for
optional parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.errors import InvalidRequest


def json_type(value: object) -> str:
    """How OpenAI's messages name a JSON value's type ("a string", "an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def invalid_type(param: str, expected: str, value: object) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        violations={param: f"expected {expected}"},
    )


def invalid_value(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {message}", violations={param: message})


def unsupported_value(param: str, value: object, supported: tuple[str, ...]) -> InvalidRequest:
    listed = ", ".join(f"'{option}'" for option in supported)
    return InvalidRequest(
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        violations={param: f"must be one of {listed}"},
    )


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", violations={param: "required"}
    )


def optional_bool(document: Mapping[str, Any], key: str, param: str | None = None) -> bool | None:
    value = document.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid_type(param or key, "a boolean", value)


def optional_str(document: Mapping[str, Any], key: str, param: str | None = None) -> str | None:
    value = document.get(key)
    if value is None or isinstance(value, str):
        return value
    raise invalid_type(param or key, "a string", value)


def required_str(document: Mapping[str, Any], key: str, param: str) -> str:
    value = optional_str(document, key, param)
    if value is None:
        raise missing(param)
    return value


def optional_object(
    document: Mapping[str, Any], key: str, param: str | None = None
) -> dict[str, Any] | None:
    value = document.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise invalid_type(param or key, "an object", value)


def optional_number(
    document: Mapping[str, Any], key: str, low: float, high: float
) -> float | None:
    """A decimal within [low, high]; integers are decimals too (`"temperature": 1`)."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a decimal", value)
    _check_range(key, "decimal", value, low, high)
    return float(value)


def optional_int(
    document: Mapping[str, Any], key: str, low: int, high: int | None = None
) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(key, "an integer", value)
    _check_range(key, "integer", value, low, high)
    return value


def _check_range(
    key: str, kind: str, value: float, low: float, high: float | None
) -> None:
    if value < low:
        raise InvalidRequest(
            f"Invalid '{key}': {kind} below minimum value. "
            f"Expected a value >= {_text(low)}, but got {_text(value)} instead.",
            violations={key: f"must be >= {_text(low)}"},
        )
    if high is not None and value > high:
        raise InvalidRequest(
            f"Invalid '{key}': {kind} above maximum value. "
            f"Expected a value <= {_text(high)}, but got {_text(value)} instead.",
            violations={key: f"must be <= {_text(high)}"},
        )


def _text(number: float) -> str:
    # 2 rather than 2.0, and 1000000 rather than 1e+06
    if isinstance(number, int) or number.is_integer():
        return str(int(number))
    return repr(number)


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object, refused in OpenAI's words otherwise."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The API expects a JSON payload."
        ) from None
    if not isinstance(document, dict):
        raise InvalidRequest(
            "Invalid type for the request body: expected an object, but got "
            f"{'an array' if isinstance(document, list) else 'a scalar'} instead."
        )
    return document


def required_model(document: Mapping[str, Any]) -> str:
    """The request's `model`, refused in OpenAI's words when absent or not a string."""
    model = document.get("model")
    if model is None or model == "":
        raise InvalidRequest("you must provide a model parameter",
                             violations={"model": "required"})
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    return model
