"""Canonical stream events → Gemini stream chunks, framed as SSE or as a JSON array.

Invariants of the chunks: every chunk repeats modelVersion, responseId and createTime; once
usage is known every chunk carries the running usageMetadata; a candidate's finishReason comes
only in its last chunk, and that chunk carries the final usage: a finish that arrives before
the usage is held until the usage comes or the caller calls `end()`. A chunk's candidate
carries the log probabilities of its own increment (logprobsResult, and avgLogprobs over those
tokens), as every chunk is a GenerateContentResponse of its own.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from cometgate.canonical import (
    CandidateFinished,
    FinishReason,
    Grounding,
    PartDelta,
    StreamEvent,
    StreamStarted,
    TextPart,
    UrlMetadata,
    Usage,
    UsageReported,
)
from cometgate.dialects.gemini.caller_errors import encode_stream_error
from cometgate.dialects.gemini.caller_grounding import grounding_metadata
from cometgate.dialects.gemini.caller_response import create_time, encode_logprobs, encode_usage
from cometgate.dialects.gemini.caller_thinking import CallThinking
from cometgate.dialects.gemini.caller_url_context import url_context_metadata
from cometgate.dialects.gemini.parts import FINISH_REASONS, encode_part
from cometgate.dialects.sse import sse_event
from cometgate.errors import GatewayError

Framing = Literal["sse", "json"]


class ChunkAssembler:
    """Builds chunk dicts; knows nothing of framing."""

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._usage: Usage | None = None
        self._usage_sent = True
        self._held: dict[int, FinishReason] = {}
        self._call_thinking = CallThinking()
        # Grounding offsets point into a candidate's whole text, known only at its end.
        self._texts: dict[int, list[str]] = {}
        self._grounding: dict[int, Grounding] = {}
        self._url_metadata: dict[int, tuple[UrlMetadata, ...]] = {}

    def feed(self, event: StreamEvent) -> list[dict[str, Any]]:
        match event:
            case StreamStarted():
                self._meta = {
                    "modelVersion": event.model_version,
                    "responseId": event.response_id,
                    "createTime": create_time(event.created),
                }
                return []
            case PartDelta(part=part, index=index, logprobs=logprobs):
                if isinstance(part, TextPart):
                    self._texts.setdefault(index, []).append(part.text)
                part = self._call_thinking.part(part, index)
                content = {"parts": [encode_part(part)], "role": "model"}
                candidate: dict[str, Any] = {"content": content}
                if logprobs:
                    candidate.update(encode_logprobs(logprobs))
                return [self._chunk([{**candidate, "index": index}])]
            case CandidateFinished(reason=reason, index=index, grounding=grounding):
                self._held[index] = reason
                if grounding is not None:
                    self._grounding[index] = grounding
                if event.url_metadata:
                    self._url_metadata[index] = event.url_metadata
                return self._release() if self._usage is not None else []
            case UsageReported(usage=usage):
                self._usage, self._usage_sent = usage, False
                return self._release()
        return []

    def end(self) -> list[dict[str, Any]]:
        if self._held:
            return self._release()
        if not self._usage_sent:
            return [self._chunk(None)]
        return []

    def _release(self) -> list[dict[str, Any]]:
        if not self._held:
            return []
        candidates = [self._finished(i, reason) for i, reason in sorted(self._held.items())]
        self._held.clear()
        return [self._chunk(candidates)]

    def _finished(self, index: int, reason: FinishReason) -> dict[str, Any]:
        """A candidate's last piece: its finish reason and, as Google sends them with the
        finish, the grounding and URL-context metadata of the whole candidate."""
        out: dict[str, Any] = {"content": {"role": "model"}, "finishReason": FINISH_REASONS[reason]}
        grounding = self._grounding.pop(index, None)
        if grounding is not None:
            text = "".join(self._texts.get(index, ()))
            out["groundingMetadata"] = grounding_metadata(grounding, text)
        url_metadata = self._url_metadata.pop(index, ())
        if url_metadata:
            out["urlContextMetadata"] = url_context_metadata(url_metadata)
        out["index"] = index
        return out

    def _chunk(self, candidates: list[dict[str, Any]] | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {"candidates": candidates} if candidates else {}
        if self._usage is not None:
            chunk["usageMetadata"] = encode_usage(self._usage)
            self._usage_sent = True
        chunk.update(self._meta)
        return chunk


class GeminiStreamEncoder:
    """Yields the bytes to write, in order. SSE: one `data: …\\r\\n\\r\\n` event per chunk and
    nothing else. JSON: `[`, elements joined by `,\\r\\n`, `]`, written as they come."""

    def __init__(self, framing: Framing = "sse") -> None:
        self._framing = framing
        self._assembler = ChunkAssembler()
        self._elements = 0

    def feed(self, event: StreamEvent) -> list[bytes]:
        return [self._frame(chunk) for chunk in self._assembler.feed(event)]

    def end(self) -> list[bytes]:
        pieces = [self._frame(chunk) for chunk in self._assembler.end()]
        if self._framing == "json":
            pieces.append(b"]" if self._elements else b"[]")
        return pieces

    def fail(self, err: GatewayError) -> list[bytes]:
        """The last bytes of a stream that broke after it started."""
        if self._framing == "sse":
            return [encode_stream_error(err)]
        body = {"error": {"code": err.http_status, "message": err.message, "status": err.status}}
        return [self._array_element(orjson.dumps(body)), b"]"]

    def _frame(self, chunk: dict[str, Any]) -> bytes:
        payload = orjson.dumps(chunk)
        if self._framing == "sse":
            return sse_event(payload)
        return self._array_element(payload)

    def _array_element(self, payload: bytes) -> bytes:
        self._elements += 1
        return (b"[" if self._elements == 1 else b",\r\n") + payload


class ForwardedGeminiFraming:
    """What the gateway needs to know of a Gemini upstream's stream it relays unchanged: which
    piece ends it (the one with `finishReason`), and how to end it after a failure — an error
    event (SSE), or an error element closing the JSON array."""

    def __init__(self, *, sse: bool) -> None:
        self._sse = sse

    def is_final(self, data: bytes) -> bool:
        return b'"finishReason"' in data

    def error(self, err: GatewayError, *, opened: bool) -> bytes:
        event = encode_stream_error(err)
        if self._sse:
            return event
        payload = event.removeprefix(b"data: ").strip()
        return (b",\r\n" if opened else b"") + payload + b"]"
