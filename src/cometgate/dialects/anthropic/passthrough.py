"""An Anthropic caller's request forwarded to an Anthropic upstream as it is: the fast, faithful
path. Only the model is rewritten, on the way up (the upstream's name) and on the way back
(the name the caller asked for, in the message and in `message_start`); every field Anthropic
understands — including the ones no translation could carry (context_management, adaptive
thinking, output_config, cache_control, server tools, fields not invented yet) — reaches it.

The caller's `anthropic-version` and `anthropic-beta` headers and its `beta` query flag go
with the body (`count_tokens.forwarded_headers`, `caller_query`): they decide what the body
means to Anthropic. The caller's credential never goes: the gateway's does.

Answers are read only as far as accounting needs: the usage (message_start's, then
message_delta's cumulative counts, cache writes and reads included) and an `error` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import Usage
from cometgate.dialects.anthropic.caller_errors import encode_anthropic_error
from cometgate.dialects.anthropic.upstream_errors import classify_stream_error
from cometgate.dialects.anthropic.upstream_response import TokenCounts
from cometgate.dialects.json_field import JsonPath, replaced_string, with_top_level_string
from cometgate.dialects.sse_split import SSEEventSplitter, event_object
from cometgate.errors import FailureClass, GatewayError, UpstreamError

# Events worth parsing: those that carry usage, the model, the end, or a failure. (A quote
# inside a JSON string is escaped, so `"usage"` in an event is a key, never text.)
_READ_MARKERS = (b'"usage"', b'"error"', b"message_start", b"message_stop")
_FINAL_EVENTS = (b"event: message_delta", b"event: message_stop")
_FINAL_PAYLOADS = (b'{"type":"message_delta"', b'{"type":"message_stop"')
_MODEL = JsonPath(("model",))
_STARTED_MODEL = JsonPath(("message", "model"))


def forwarded_body(body: bytes, document: Mapping[str, Any], upstream_model: str) -> bytes:
    """The caller's bytes with the upstream's model name, and nothing else changed."""
    return with_top_level_string(body, document, _MODEL, upstream_model)


def answer_for_caller(body: bytes, model: str) -> tuple[bytes, Usage | None]:
    """A whole message with the caller's model name, and its usage; an unreadable body is
    returned as it came (usage None): the caller decides what to make of it."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body, None
    if not isinstance(document, dict):
        return body, None
    renamed = replaced_string(body, _MODEL, model) or body
    return renamed, _usage(document.get("usage"))


def _usage(fields: object) -> Usage | None:
    if not isinstance(fields, dict):
        return None
    counts = TokenCounts()
    counts.update(fields)
    return counts.usage()


@dataclass(frozen=True, slots=True)
class ForwardedEvent:
    data: bytes  # the upstream's event; only message_start's model differs
    usage: Usage | None  # the running usage, when this event reported some
    error: UpstreamError | None


@dataclass(slots=True)
class ForwardedMessageEvents:
    """Cuts an upstream's SSE body into events, relayed one by one."""

    model: str  # the name the caller asked for
    started: bool = False  # message_start came
    stopped: bool = False  # message_stop came
    failed: bool = False  # an error event came
    _events: SSEEventSplitter = field(default_factory=SSEEventSplitter)
    _counts: TokenCounts = field(default_factory=TokenCounts)

    def feed(self, piece: bytes) -> list[ForwardedEvent]:
        return [self._read(event) for event in self._events.feed(piece)]

    def close(self) -> list[ForwardedEvent]:
        rest = self._events.close()
        return [self._read(rest)] if rest.strip() else []

    def early_end(self) -> UpstreamError | None:
        """The failure of a stream that ended before message_stop without saying why."""
        if self.stopped or self.failed:
            return None
        return UpstreamError("upstream closed the stream early",
                             failure_class=FailureClass.TRANSIENT, http_status=503,
                             status="UNAVAILABLE")

    def _read(self, event: bytes) -> ForwardedEvent:
        if not any(marker in event for marker in _READ_MARKERS):
            return ForwardedEvent(event, None, None)
        document = event_object(event)
        if document is None:
            return ForwardedEvent(event, None, None)
        kind = document.get("type")
        if kind == "error" or event.startswith(b"event: error"):
            self.failed = True
            return ForwardedEvent(event, None, classify_stream_error(document))
        if kind == "message_stop":
            self.stopped = True
        if kind == "message_start":
            self.started = True
            message = document.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            event = replaced_string(event, _STARTED_MODEL, self.model) or event
            return ForwardedEvent(event, self._update(usage), None)
        if kind == "message_delta":
            return ForwardedEvent(event, self._update(document.get("usage")), None)
        return ForwardedEvent(event, None, None)

    def _update(self, fields: object) -> Usage | None:
        if not isinstance(fields, dict):
            return None
        self._counts.update(fields)
        return self._counts.usage()


class ForwardedAnthropicFraming:
    """What the gateway needs to know of an Anthropic stream it relays: message_delta (the stop
    reason and final usage) and message_stop end it; a broken stream ends with an `error`
    event, as Anthropic ends its own."""

    def is_final(self, data: bytes) -> bool:
        return data.startswith(_FINAL_EVENTS) or any(p in data for p in _FINAL_PAYLOADS)

    def error(self, err: GatewayError, *, opened: bool) -> bytes:
        _, body = encode_anthropic_error(err)
        # JSON allows no raw line break inside a string, so outside one it is only spacing.
        body = body.replace(b"\r", b" ").replace(b"\n", b" ")
        return b"event: error\ndata: " + body + b"\n\n"
