"""Gemini `GenerateContentResponse` JSON → canonical responses and stream events, for a Gemini
upstream reached by translation: the mirror of `caller_response` and `caller_stream`.

Conventions:

- The answering model is the one the caller named (`model_version`). The upstream's
  responseId is kept (a fresh id when it sent none); createTime is read when present.
- Finish reasons STOP, MAX_TOKENS, SAFETY, RECITATION and MALFORMED_FUNCTION_CALL map one to
  one; Google's other content filters (BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY,
  IMAGE_PROHIBITED_CONTENT) are SAFETY too, since they also mean "filtered"; all else is OTHER.
- A prompt blocked before generation (HTTP 200, promptFeedback.blockReason, no candidates)
  becomes one candidate without parts, finished SAFETY (OTHER for blockReason OTHER or
  unspecified): callers of other dialects expect a candidate, and know a filter by that
  reason. Encoded back for a Gemini caller, it is a finished candidate instead of
  promptFeedback alone.
- A function call without an id gets "call_" + 24 hex digits derived from the responseId, the
  candidate and the call's position: one answer always yields the same ids, whole or streamed,
  so that results sent back in another dialect pair with their calls.
- Parts with no canonical form (executableCode, codeExecutionResult: answers to built-in tools
  a Gemini caller asked for) are left out, and a whole answer names them in `dropped`; a stream
  cannot report once it has started, so there they are left out unreported.
- A candidate's `logprobsResult` becomes its log probabilities: chosenCandidates[i] with
  topCandidates[i] as its alternatives. proto3 leaves out zero values, so a missing
  logProbability is 0.0. In a stream they ride on the chunk's first new part (an empty text
  part when the chunk has none). avgLogprobs is not read: it follows from the tokens.
- A body that is not a GenerateContentResponse is an UpstreamError (UNKNOWN, 502); an
  `{"error":…}` in place of an answer or a chunk is classified like an error status.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cometgate.canonical import (
    BlobPart,
    Candidate,
    CandidateFinished,
    FileRefPart,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Part,
    PartDelta,
    ReasoningPart,
    StreamEvent,
    StreamStarted,
    TextPart,
    TokenLogprob,
    ToolCallPart,
    Usage,
    UsageReported,
)
from cometgate.dialects.gemini.parts import FINISH_REASONS
from cometgate.dialects.gemini.protojson import decode_base64
from cometgate.dialects.gemini.schema import message_type
from cometgate.dialects.gemini.upstream_errors import stream_error_event, usage_of
from cometgate.dialects.gemini.upstream_grounding import grounding_of
from cometgate.dialects.sse_decode import SSEFrame
from cometgate.dialects.upstream_answers import new_response_id, unreadable
from cometgate.errors import FailureClass, UpstreamError

_FILTERS = ("BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT")
_FINISH = {name: reason for reason, name in FINISH_REASONS.items()} | dict.fromkeys(
    _FILTERS, FinishReason.SAFETY)
_BLOCKED_FOR_OTHER = ("BLOCK_REASON_UNSPECIFIED", "OTHER")
_PART_DATA = tuple(spec.json_name for spec in message_type("Part").oneof_members("data"))


def decode_response(body: bytes, request: GenerateRequest, model_version: str) -> GenerateResponse:
    document = _document(body)
    response_id = _response_id(document)
    ids = _CallIds(response_id)
    dropped: list[str] = []
    candidates = [_candidate(raw, position, ids, dropped)
                  for position, raw in enumerate(_candidates(document))]
    blocked = _blocked(document)
    if blocked is not None:
        candidates = [Candidate((), blocked)]
    return GenerateResponse(
        model_version=model_version,
        candidates=tuple(candidates),
        usage=usage_of(document) or Usage(),
        response_id=response_id,
        created=_created(document),
        dropped=tuple(dropped),
    )


async def decode_stream(
    frames: AsyncIterator[SSEFrame], request: GenerateRequest, model_version: str
) -> AsyncGenerator[StreamEvent, None]:
    """`:streamGenerateContent?alt=sse`: every event is a whole GenerateContentResponse
    holding the text added since the last one, whole function calls, the finish reason in a
    candidate's last chunk, and the running usage. One UsageReported comes last, with the
    last usage seen. A stream that ends before every candidate has finished was cut short:
    a transient UpstreamError."""
    state = _StreamState(model_version)
    async for frame in frames:
        for event in state.events(_document(frame.data.encode())):
            yield event
    if not state.complete():
        raise UpstreamError("upstream closed the stream early",
                            failure_class=FailureClass.TRANSIENT, http_status=503,
                            status="UNAVAILABLE")
    if state.usage is not None:
        yield UsageReported(state.usage)


def finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(value, FinishReason.OTHER) if isinstance(value, str) else FinishReason.OTHER


@dataclass(slots=True)
class _CallIds:
    response_id: str
    issued: dict[int, int] = field(default_factory=dict)  # candidate index → ids given

    def next(self, candidate: int) -> str:
        count = self.issued.get(candidate, 0)
        self.issued[candidate] = count + 1
        seed = f"{self.response_id}/{candidate}/{count}".encode()
        return "call_" + hashlib.blake2b(seed, digest_size=12).hexdigest()


@dataclass(slots=True)
class _StreamState:
    model_version: str
    ids: _CallIds | None = None  # set by the first chunk
    usage: Usage | None = None
    seen: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    # Grounding offsets count bytes of a candidate's whole text, so the text is kept; the
    # metadata usually comes with the last chunk, but the latest seen is what counts.
    texts: dict[int, list[str]] = field(default_factory=dict)
    grounding: dict[int, object] = field(default_factory=dict)

    def complete(self) -> bool:
        return self.ids is not None and bool(self.finished) and self.seen <= self.finished

    def events(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if self.ids is None:
            self.ids = _CallIds(_response_id(chunk))
            events.append(StreamStarted(self.model_version, self.ids.response_id,
                                        _created(chunk)))
        self.usage = usage_of(chunk) or self.usage
        for position, raw in enumerate(_candidates(chunk)):
            candidate = _candidate(raw, position, self.ids, [])
            self.seen.add(candidate.index)
            self.texts.setdefault(candidate.index, []).extend(
                part.text for part in candidate.parts if isinstance(part, TextPart))
            if isinstance(raw, dict) and "groundingMetadata" in raw:
                self.grounding[candidate.index] = raw["groundingMetadata"]
            events.extend(_deltas(candidate))
            if candidate.finish_reason is not None:
                events.extend(self._finish(candidate.finish_reason, candidate.index))
        blocked = _blocked(chunk)
        if blocked is not None:
            events.extend(self._finish(blocked, 0))
        return events

    def _finish(self, reason: FinishReason, index: int) -> list[StreamEvent]:
        if index in self.finished:
            return []
        self.seen.add(index)
        self.finished.add(index)
        text = "".join(self.texts.get(index, ()))
        return [CandidateFinished(reason, index,
                                  grounding_of(self.grounding.get(index), text))]


def _deltas(candidate: Candidate) -> list[PartDelta]:
    """A chunk's new parts, its log probabilities on the first."""
    parts = [part for part in candidate.parts if _adds_something(part)]
    if candidate.logprobs and not parts:
        parts = [TextPart("")]
    return [PartDelta(part, candidate.index, candidate.logprobs if number == 0 else ())
            for number, part in enumerate(parts)]


def _adds_something(part: Part) -> bool:
    if isinstance(part, TextPart | ReasoningPart):
        return bool(part.text) or part.signature is not None
    return True


# --- documents ----------------------------------------------------------------------------


def _document(data: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise unreadable("not JSON") from None
    if not isinstance(document, dict) or "error" in document:
        error = stream_error_event(data)
        if error is not None:
            raise error
    if not isinstance(document, dict):
        raise unreadable("not a JSON object")
    return document


def _candidates(document: Mapping[str, Any]) -> list[Any]:
    candidates = document.get("candidates")
    if candidates is None:
        return []
    if not isinstance(candidates, list):
        raise unreadable("candidates is not a list")
    return candidates


def _response_id(document: Mapping[str, Any]) -> str:
    response_id = document.get("responseId")
    return response_id if isinstance(response_id, str) and response_id else new_response_id()


def _created(document: Mapping[str, Any]) -> float:
    created = document.get("createTime")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return time.time()


def _blocked(document: Mapping[str, Any]) -> FinishReason | None:
    feedback = document.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not isinstance(reason, str) or document.get("candidates"):
        return None
    return FinishReason.OTHER if reason in _BLOCKED_FOR_OTHER else FinishReason.SAFETY


# --- candidates and parts -----------------------------------------------------------------


def _candidate(raw: object, position: int, ids: _CallIds, dropped: list[str]) -> Candidate:
    if not isinstance(raw, dict):
        raise unreadable("a candidate is not a JSON object")
    index = raw.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        index = position  # a whole answer from Google names no index
    content = raw.get("content")
    raw_parts = content.get("parts") if isinstance(content, dict) else None
    parts: list[Part] = []
    for number, raw_part in enumerate(raw_parts if isinstance(raw_parts, list) else []):
        part = _part(raw_part, index, ids)
        if part is None:
            kind = next((name for name in _PART_DATA if name in raw_part), "an unknown part")
            dropped.append(f"candidates[{position}].content.parts[{number}]: {kind} has no "
                           "form outside the Gemini API")
        else:
            parts.append(part)
    text = "".join(part.text for part in parts if isinstance(part, TextPart))
    return Candidate(tuple(parts), finish_reason(raw.get("finishReason")), index,
                     _logprobs(raw.get("logprobsResult")),
                     grounding_of(raw.get("groundingMetadata"), text))


def _logprobs(result: object) -> tuple[TokenLogprob, ...]:
    if result is None:
        return ()
    if not isinstance(result, dict):
        raise unreadable("logprobsResult is not a JSON object")
    chosen = _list(result.get("chosenCandidates"), "chosenCandidates")
    top = _list(result.get("topCandidates"), "topCandidates")
    alternatives = [_alternatives(step) for step in top]
    return tuple(
        TokenLogprob(*_token(item), alternatives[step] if step < len(alternatives) else ())
        for step, item in enumerate(chosen)
    )


def _alternatives(step: object) -> tuple[tuple[str, float], ...]:
    if not isinstance(step, dict):
        raise unreadable("a topCandidates entry is not a JSON object")
    return tuple(_token(item) for item in _list(step.get("candidates"), "candidates"))


def _token(item: object) -> tuple[str, float]:
    if not isinstance(item, dict):
        raise unreadable("a log probability candidate is not a JSON object")
    token, logprob = item.get("token", ""), item.get("logProbability", 0.0)
    is_number = isinstance(logprob, int | float) and not isinstance(logprob, bool)
    if not isinstance(token, str) or not is_number:
        raise unreadable("a log probability candidate has no token or no number")
    return token, float(logprob)


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise unreadable(f"{what} is not a list")
    return value


def _part(raw: object, candidate: int, ids: _CallIds) -> Part | None:
    """None for a part with no canonical form."""
    if not isinstance(raw, dict):
        raise unreadable("a part is not a JSON object")
    signature = _signature(raw.get("thoughtSignature"))
    if "text" in raw:
        text = raw["text"]
        if not isinstance(text, str):
            raise unreadable("a text part holds no string")
        if raw.get("thought") is True:
            return ReasoningPart(text, signature)
        return TextPart(text, signature)
    if "functionCall" in raw:
        return _call(raw["functionCall"], signature, candidate, ids)
    if "inlineData" in raw:
        return _blob(raw["inlineData"])
    if "fileData" in raw:
        return _file(raw["fileData"])
    if signature is not None and not any(name in raw for name in _PART_DATA):
        return TextPart("", signature)  # a part that carries only a signature
    return None


def _call(call: object, signature: bytes | None, candidate: int, ids: _CallIds) -> ToolCallPart:
    name = call.get("name") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(name, str) or not name:
        raise unreadable("a function call has no name")
    args = call.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise unreadable("function call arguments are not a JSON object")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = ids.next(candidate)
    return ToolCallPart(name, args, call_id, signature)


def _blob(blob: object) -> BlobPart:
    mime_type = blob.get("mimeType") if isinstance(blob, dict) else None
    data = blob.get("data") if isinstance(blob, dict) else None
    if not isinstance(mime_type, str) or not isinstance(data, str):
        raise unreadable("inline data without a MIME type or data")
    return BlobPart(mime_type, _bytes(data, "inline data"))


def _file(ref: object) -> FileRefPart:
    uri = ref.get("fileUri") if isinstance(ref, dict) else None
    if not isinstance(ref, dict) or not isinstance(uri, str):
        raise unreadable("file data without a URI")
    mime_type = ref.get("mimeType")
    return FileRefPart(uri, mime_type if isinstance(mime_type, str) else None)


def _signature(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise unreadable("a thought signature is not a string")
    return _bytes(value, "a thought signature")


def _bytes(text: str, what: str) -> bytes:
    try:
        return decode_base64(text)
    except ValueError:
        raise unreadable(f"{what} is not base64") from None
