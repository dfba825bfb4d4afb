"""Small pieces every outbound codec needs: reading an upstream's answer, refusing a part."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson

from cometgate.canonical import BlobPart, FileRefPart, Part
from cometgate.errors import FailureClass, InvalidRequest, UpstreamError

MESSAGE_LIMIT = 2000  # an upstream's error message is relayed, but never at any length


def new_response_id() -> str:
    """A fresh id for the caller; an upstream's own id would leak which upstream answered."""
    return secrets.token_urlsafe(18)


def unreadable(detail: str) -> UpstreamError:
    """A 2xx answer that is no answer (unparseable, or JSON of the wrong shape): a transient
    fault of that upstream — before any byte reached the caller another candidate is tried,
    and it counts toward the target's breaker; the caller hears 502 only when none is left."""
    return UpstreamError(f"unreadable upstream response: {detail}",
                         failure_class=FailureClass.TRANSIENT, http_status=502,
                         status="UNAVAILABLE")


def answer_object(body: bytes) -> dict[str, Any]:
    """An upstream's whole answer as a JSON object, or the unreadable-answer failure."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise unreadable("not JSON") from None
    if not isinstance(document, dict):
        raise unreadable("not a JSON object")
    return document


def error_message(error: Mapping[str, Any], status: int) -> str:
    message = error.get("message")
    if not isinstance(message, str) or not message.strip():
        return f"the upstream rejected the request (HTTP {status})"
    return message.strip()[:MESSAGE_LIMIT]


def failure(message: str, failure_class: FailureClass, status: int, http_status: int,
            rpc_status: str = "UNAVAILABLE") -> UpstreamError:
    return UpstreamError(message, failure_class=failure_class, upstream_status=status,
                         http_status=http_status, status=rpc_status)


def describe_part(part: Part) -> str:
    if isinstance(part, BlobPart | FileRefPart):
        return f"MIME type {part.mime_type or 'unknown'}"
    return type(part).__name__


def unsupported_part(where: str, part: Part, place: str) -> InvalidRequest:
    """A part this upstream's dialect has no field for, refused before anything is sent."""
    described = describe_part(part)
    return InvalidRequest(
        f"{where}: {described} is not supported in {place}",
        violations={where: f"unsupported {described}"},
    )
