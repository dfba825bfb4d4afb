"""Gateway errors → Google's error envelope `{"error":{"code","message","status","details"}}`.

`code` is always the integer HTTP status: google-genai compares it numerically, and a stream
error frame must start with `{"error":` for that SDK to recognise it.
"""

from __future__ import annotations

from typing import Any

import orjson

from cometgate.dialects.sse import sse_event
from cometgate.errors import GatewayError, InvalidRequest

API_KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def error_body(err: GatewayError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": err.http_status, "message": err.message, "status": err.status}
    details = _details(err)
    if details:
        body["details"] = details
    return {"error": body}


def _details(err: GatewayError) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    if isinstance(err, InvalidRequest) and err.violations:
        details.append({"@type": _BAD_REQUEST, "fieldViolations": _field_violations(err)})
    retry_after = getattr(err, "retry_after", None)  # RateLimited, BudgetExhausted, upstreams
    if retry_after is not None:
        details.append({"@type": _RETRY_INFO, "retryDelay": duration_text(retry_after)})
    return details


def _field_violations(err: InvalidRequest) -> list[dict[str, str]]:
    # One entry per problem: descriptions gathered at one path are newline-joined.
    out: list[dict[str, str]] = []
    for path, description in err.violations.items():
        for line in description.split("\n"):
            out.append({"field": path, "description": line} if path else {"description": line})
    return out


def duration_text(seconds: float) -> str:
    """google.protobuf.Duration in JSON: "3s", "1.5s"."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0") + "s"


def encode_error(err: GatewayError) -> tuple[int, bytes]:
    return err.http_status, orjson.dumps(error_body(err))


def encode_stream_error(err: GatewayError) -> bytes:
    """A mid-stream error as one SSE event (no details: clients read code/message/status)."""
    body = {"error": {"code": err.http_status, "message": err.message, "status": err.status}}
    return sse_event(orjson.dumps(body))


def api_key_invalid_error(message: str = API_KEY_INVALID_MESSAGE) -> tuple[int, bytes]:
    """Exactly what Google answers to an invalid (or, with its own message, expired) API key."""
    body = {
        "error": {
            "code": 400,
            "message": message,
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        }
    }
    return 400, orjson.dumps(body)
