"""Gateway errors in the Responses dialect. A refusal before the answer starts is OpenAI's
error envelope (`dialects/openai/caller_errors`: the Responses API shares it, and the routes
settle on the OpenAI dialect). A stream that breaks after it started says it twice, as OpenAI's
own streams do: an `error` event (code, message, param), then `response.failed` whose
Response carries `error: {code, message}` — a code from the few ResponseError allows."""

from __future__ import annotations

from typing import Any

from cometgate.dialects.openai.caller_errors import native_openai_body, openai_error
from cometgate.errors import GatewayError


def error_event_fields(error: GatewayError) -> dict[str, Any]:
    """The fields of the `error` event: an upstream's own OpenAI error when there is one."""
    envelope = (native_openai_body(error) or openai_error(error)[1]).get("error")
    detail = envelope if isinstance(envelope, dict) else {}
    return {"code": detail.get("code") or detail.get("type") or "server_error",
            "message": str(detail.get("message") or error.message),
            "param": detail.get("param")}


def response_error(error: GatewayError, message: str) -> dict[str, Any]:
    """The failed Response's `error`."""
    code = "rate_limit_exceeded" if error.http_status == 429 else "server_error"
    return {"code": code, "message": message}
