"""A Responses caller's request forwarded to an OpenAI-compatible upstream that serves the
Responses API itself (`responses_api: true`): only the model is rewritten. The answer is
relayed as it came, read only as far as accounting needs — its `usage`, and in a stream the
event that ends it (`response.completed`, `response.incomplete`, `response.failed`) or an
in-band `error` event.

A relayed stream that breaks after it started ends as the gateway's own streams end: an `error`
event, then `response.failed` carrying the Response the upstream announced in
`response.created` (status "failed"), their sequence numbers following the last one relayed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cometgate.canonical import Usage
from cometgate.dialects.openai.upstream_errors import classify_stream_error
from cometgate.dialects.responses.caller_errors import error_event_fields, response_error
from cometgate.dialects.responses.caller_stream import sse_event
from cometgate.dialects.sse_split import SSEEventSplitter, event_object
from cometgate.errors import GatewayError, UpstreamError

_FINAL = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')
_SEQUENCE = re.compile(rb'"sequence_number"\s*:\s*(\d+)')


def forwarded_body(document: Mapping[str, Any], upstream_model: str) -> bytes:
    return orjson.dumps({**document, "model": upstream_model})


def decode_usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    output = _int(usage.get("output_tokens"))
    reasoning = _int(_nested(usage, "output_tokens_details", "reasoning_tokens"))
    return Usage(prompt_tokens=_int(usage.get("input_tokens")),
                 output_tokens=max(output - reasoning, 0), thoughts_tokens=reasoning,
                 cached_tokens=_int(_nested(usage, "input_tokens_details", "cached_tokens")))


def usage_of_response(body: bytes) -> Usage | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return decode_usage(document.get("usage")) if isinstance(document, dict) else None


@dataclass(frozen=True, slots=True)
class ForwardedEvent:
    data: bytes  # exactly the upstream's bytes
    usage: Usage | None
    error: UpstreamError | None


class ForwardedResponseEvents:
    """Cuts an upstream's Responses stream into events; parses only those that end it or
    report an error."""

    def __init__(self) -> None:
        self._events = SSEEventSplitter()

    def feed(self, piece: bytes) -> list[ForwardedEvent]:
        return [self._read(event) for event in self._events.feed(piece)]

    def close(self) -> list[ForwardedEvent]:
        rest = self._events.close()
        return [self._read(rest)] if rest else []

    def _read(self, event: bytes) -> ForwardedEvent:
        final = any(kind in event for kind in _FINAL)
        if not final and b'"error"' not in event:
            return ForwardedEvent(event, None, None)
        document = event_object(event)
        if document is None:
            return ForwardedEvent(event, None, None)
        if document.get("type") == "error" or (
                "error" in document and "type" not in document):
            return ForwardedEvent(event, None, classify_stream_error(
                orjson.dumps({"error": _error_fields(document)})))
        response = document.get("response")
        usage = decode_usage(response.get("usage")) if isinstance(response, dict) else None
        return ForwardedEvent(event, usage, None)


class ForwardedResponsesFraming:
    """What the relay needs to know of a forwarded Responses stream: which event ends it, and
    how to end it when it breaks. One per stream: it remembers the announced Response and the
    last sequence number."""

    def __init__(self) -> None:
        self._sequence = -1
        self._response: dict[str, Any] | None = None

    def is_final(self, data: bytes) -> bool:
        found = _SEQUENCE.search(data)
        if found is not None:
            self._sequence = int(found.group(1))
        if self._response is None and b'"response.created"' in data:
            self._response = _announced(data)
        return any(kind in data for kind in _FINAL)

    def error(self, err: GatewayError, *, opened: bool) -> bytes:
        fields = error_event_fields(err)
        self._sequence += 1
        frames = sse_event({"type": "error", "sequence_number": self._sequence, **fields})
        if self._response is not None:
            self._sequence += 1
            failed = {**self._response, "status": "failed",
                      "error": response_error(err, fields["message"])}
            frames += sse_event({"type": "response.failed", "sequence_number": self._sequence,
                                 "response": failed})
        return frames


def _announced(data: bytes) -> dict[str, Any] | None:
    document = event_object(data)
    response = document.get("response") if document is not None else None
    return response if isinstance(response, dict) else None


def _error_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    nested = document.get("error")
    if isinstance(nested, dict):
        return nested
    return {key: document.get(key) for key in ("message", "code", "param")}


def _nested(document: Mapping[str, Any], outer: str, inner: str) -> object:
    section = document.get(outer)
    return section.get(inner) if isinstance(section, dict) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
