"""Small pieces every outbound codec needs when it reads an upstream's answer."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from cometgate.errors import FailureClass, UpstreamError

MESSAGE_LIMIT = 2000  # an upstream's error message is relayed, but never at any length


def new_response_id() -> str:
    """A fresh id for the caller; an upstream's own id would leak which upstream answered."""
    return secrets.token_urlsafe(18)


def unreadable(detail: str) -> UpstreamError:
    return UpstreamError(f"unreadable upstream response: {detail}",
                         failure_class=FailureClass.UNKNOWN, http_status=502,
                         status="UNAVAILABLE")


def error_message(error: Mapping[str, Any], status: int) -> str:
    message = error.get("message")
    if not isinstance(message, str) or not message.strip():
        return f"the upstream rejected the request (HTTP {status})"
    return message.strip()[:MESSAGE_LIMIT]


def failure(message: str, failure_class: FailureClass, status: int, http_status: int,
            rpc_status: str = "UNAVAILABLE") -> UpstreamError:
    return UpstreamError(message, failure_class=failure_class, upstream_status=status,
                         http_status=http_status, status=rpc_status)
