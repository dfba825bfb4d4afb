"""The two ends of a translation: the caller's dialect (decode its request, encode the answer
or the stream for it) and the upstream's (an OutboundCodec and that upstream's answers).

Same-dialect pairs are translated here like any other; in the gateway Gemini→Gemini and
OpenAI→OpenAI are forwarded as they are (`PASSED_THROUGH`), Anthropic→Anthropic is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from bench.dialects import caller_requests, upstream_answers

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent
from cometgate.dialects.anthropic.caller_request import (
    decode_messages_request,
    read_messages_document,
)
from cometgate.dialects.anthropic.caller_response import encode_message
from cometgate.dialects.anthropic.caller_stream import MessageStreamEncoder
from cometgate.dialects.anthropic.upstream_codec import AnthropicCodec
from cometgate.dialects.gemini.caller_request import decode_generate_request
from cometgate.dialects.gemini.caller_response import encode_response
from cometgate.dialects.gemini.caller_stream import GeminiStreamEncoder
from cometgate.dialects.gemini.upstream_codec import GeminiCodec
from cometgate.dialects.openai.caller_request import (
    decode_chat_request,
    read_chat_document,
    wants_usage_in_stream,
)
from cometgate.dialects.openai.caller_response import encode_chat_completion
from cometgate.dialects.openai.caller_stream import ChatChunkEncoder
from cometgate.dialects.openai.upstream_codec import OpenAICodec
from cometgate.dialects.openai.upstream_request import OpenAIOptions
from cometgate.dialects.upstream_codec import OutboundCodec

DIALECTS = ("gemini", "openai", "anthropic")
PASSED_THROUGH = {("gemini", "gemini"), ("openai", "openai")}
MODEL = caller_requests.MODEL


class StreamEncoder(Protocol):
    """What the gateway's stream relay asks of a caller dialect's encoder."""

    def feed(self, event: StreamEvent) -> Iterable[bytes]: ...

    def end(self) -> Iterable[bytes]: ...


@dataclass(frozen=True, slots=True)
class Inbound:
    name: str
    request: bytes
    stream_request: bytes
    decode: Callable[[bytes], GenerateRequest]  # the caller's bytes → canonical
    open_stream: Callable[[bytes], tuple[GenerateRequest, StreamEncoder]]
    encode: Callable[[GenerateResponse], bytes]  # canonical answer → the caller's bytes


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    codec: OutboundCodec
    model: str
    answer: bytes
    stream: tuple[bytes, ...]  # network chunks, one SSE event each


def _gemini_decode(body: bytes) -> GenerateRequest:
    return decode_generate_request(body, MODEL)


def _gemini_stream(body: bytes) -> tuple[GenerateRequest, StreamEncoder]:
    return decode_generate_request(body, MODEL), GeminiStreamEncoder("sse")


def _openai_decode(body: bytes) -> GenerateRequest:
    return decode_chat_request(read_chat_document(body))


def _openai_stream(body: bytes) -> tuple[GenerateRequest, StreamEncoder]:
    document = read_chat_document(body)
    encoder = ChatChunkEncoder(document["model"],
                               include_usage=wants_usage_in_stream(document))
    return decode_chat_request(document), encoder


def _anthropic_decode(body: bytes) -> GenerateRequest:
    return decode_messages_request(read_messages_document(body))


def _anthropic_stream(body: bytes) -> tuple[GenerateRequest, StreamEncoder]:
    document = read_messages_document(body)
    return decode_messages_request(document), MessageStreamEncoder(document["model"])


def inbounds() -> dict[str, Inbound]:
    return {
        "gemini": Inbound("gemini", caller_requests.gemini_request(),
                          caller_requests.gemini_request(), _gemini_decode, _gemini_stream,
                          encode_response),
        "openai": Inbound("openai", caller_requests.openai_request(stream=False),
                          caller_requests.openai_request(stream=True), _openai_decode,
                          _openai_stream, lambda r: encode_chat_completion(r, MODEL)),
        "anthropic": Inbound("anthropic", caller_requests.anthropic_request(stream=False),
                             caller_requests.anthropic_request(stream=True), _anthropic_decode,
                             _anthropic_stream, lambda r: encode_message(r, MODEL)),
    }


def upstreams() -> dict[str, Upstream]:
    answers = upstream_answers
    return {
        "gemini": Upstream("gemini", GeminiCodec("v1beta"), answers.GEMINI_MODEL,
                           answers.gemini_answer(), tuple(answers.gemini_stream())),
        "openai": Upstream("openai", OpenAICodec(OpenAIOptions()), answers.OPENAI_MODEL,
                           answers.openai_answer(), tuple(answers.openai_stream())),
        "anthropic": Upstream("anthropic", AnthropicCodec(), answers.ANTHROPIC_MODEL,
                              answers.anthropic_answer(), tuple(answers.anthropic_stream())),
    }


def same_canonical_request(calls: dict[str, Inbound]) -> list[str]:
    """Where the callers' requests differ once decoded (empty: they say the same thing)."""
    def core(request: GenerateRequest) -> tuple[object, ...]:
        return (request.messages, request.system, request.tools, request.tool_choice,
                request.params, request.output, request.thinking, request.untranslated)

    decoded = {name: core(inbound.decode(inbound.request)) for name, inbound in calls.items()}
    first_name, first = next(iter(decoded.items()))
    return [f"{name} decodes differently from {first_name}"
            for name, value in decoded.items() if value != first]
