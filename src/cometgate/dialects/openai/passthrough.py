"""An OpenAI-dialect caller's request forwarded to an OpenAI-compatible upstream as it is:
only the model is rewritten, and a stream asks for its usage so that it can be accounted. The
answer's `model`, in the completion and in every chunk, is the name the caller asked for.

When the caller did not ask for usage in its stream (`stream_options.include_usage`), the
upstream is asked anyway and the usage-only chunk it then sends (`"choices": []`) is kept from
the caller, who receives exactly the stream it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from cometgate.canonical import Usage
from cometgate.dialects.json_field import JsonPath, replaced_string
from cometgate.dialects.openai.caller_errors import openai_error
from cometgate.dialects.openai.caller_stream import sse_frame
from cometgate.dialects.openai.upstream_errors import classify_stream_error
from cometgate.dialects.openai.upstream_response import answer_usage
from cometgate.dialects.sse_split import SSEEventSplitter, event_object, event_payload
from cometgate.dialects.upstream_answers import answer_object, unreadable
from cometgate.errors import GatewayError, UpstreamError

_MODEL = JsonPath(("model",))


def forwarded_body(document: Mapping[str, Any], upstream_model: str) -> bytes:
    """The caller's request for the upstream: its own fields, the upstream's model name."""
    body = dict(document)
    body["model"] = upstream_model
    if body.get("stream") is True:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}
    return orjson.dumps(body)


def caller_wants_usage(document: Mapping[str, Any]) -> bool:
    options = document.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def usage_of_response(body: bytes) -> Usage | None:
    """Usage of a whole 2xx answer relayed as it came. A body that is no chat completion —
    not JSON, not an object, no `choices` list — is the upstream's fault, and another
    candidate may answer: unreadable, rather than relayed."""
    document = answer_object(body)
    if not isinstance(document.get("choices"), list):
        raise unreadable("the answer has no choices")
    return answer_usage(document)


@dataclass(frozen=True, slots=True)
class ForwardedEvent:
    # The upstream's bytes but for the model's name, or b"" when the caller is not to see them
    data: bytes
    usage: Usage | None
    error: UpstreamError | None


def answer_for_caller(body: bytes, model: str) -> bytes:
    """A whole completion naming the model as the caller asked for it; the rest unchanged."""
    return replaced_string(body, _MODEL, model) or body


class ForwardedEvents:
    """Cuts an upstream's SSE body into events, reading each only as far as accounting needs:
    its usage (only events that mention it are parsed) and an in-band `{"error":…}`. Each
    chunk names the model as the caller asked for it (`model`)."""

    def __init__(self, *, caller_wants_usage: bool, model: str | None = None) -> None:
        """`model` None leaves the name as the upstream wrote it."""
        self._events = SSEEventSplitter()
        self._show_usage_chunk = caller_wants_usage
        self._model = model
        self._started = False

    def feed(self, piece: bytes) -> list[ForwardedEvent]:
        return [self._renamed(self._read(event)) for event in self._events.feed(piece)]

    def close(self) -> list[ForwardedEvent]:
        rest = self._events.close()
        return [self._renamed(self._read(rest))] if rest else []

    def _renamed(self, event: ForwardedEvent) -> ForwardedEvent:
        if self._model is None or b'"model"' not in event.data:
            return event
        data = replaced_string(event.data, _MODEL, self._model)
        return event if data is None else replace(event, data=data)

    def _read(self, event: bytes) -> ForwardedEvent:
        if not self._started:
            self._started = True
            # The first event must be a chunk (or the upstream's error): anything else means
            # the upstream is broken, and nothing has reached the caller yet.
            if event_object(event) is None:
                raise unreadable("the stream's first event is not a JSON object")
        if b'"usage"' not in event and b'"error"' not in event:
            return ForwardedEvent(event, None, None)
        payload = event_payload(event)
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return ForwardedEvent(event, None, None)
        if not isinstance(document, dict):
            return ForwardedEvent(event, None, None)
        if "error" in document and "choices" not in document:
            return ForwardedEvent(event, None, classify_stream_error(payload))
        usage = answer_usage(document)
        usage_only = document.get("choices") == [] and usage is not None
        hidden = usage_only and not self._show_usage_chunk
        return ForwardedEvent(b"" if hidden else event, usage, None)


class ForwardedOpenAIFraming:
    """What the gateway needs to know of an OpenAI-compatible upstream's stream it relays: the
    chunk that ends it carries a non-null `finish_reason`; a broken stream ends with an
    `{"error":…}` frame, as OpenAI-compatible servers end theirs."""

    def is_final(self, data: bytes) -> bool:
        return b'"finish_reason":"' in data or b'"finish_reason": "' in data

    def error(self, err: GatewayError, *, opened: bool) -> bytes:
        return sse_frame(openai_error(err)[1])

