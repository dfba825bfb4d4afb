"""The OpenAI Chat Completions dialect as an OutboundCodec object, configured per upstream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from cometgate.canonical import GenerateRequest, GenerateResponse, StreamEvent
from cometgate.dialects.openai.outbound import (
    OpenAIOptions,
    classify_error,
    decode_response,
    decode_stream,
    encode_request,
)
from cometgate.dialects.outbound import Encoded
from cometgate.dialects.sse_decode import SSEFrame
from cometgate.errors import UpstreamError


class OpenAICodec:
    def __init__(self, options: OpenAIOptions) -> None:
        self.options = options

    def path(self, upstream_model: str, *, stream: bool) -> str:
        return "/chat/completions"

    def headers(self, credential: str | None, *, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        if credential:
            headers["authorization"] = f"Bearer {credential}"
        return headers

    def encode_request(
        self, request: GenerateRequest, upstream_model: str, *, stream: bool
    ) -> Encoded:
        return encode_request(request, upstream_model, stream=stream, options=self.options)

    def decode_response(
        self, body: bytes, request: GenerateRequest, model_version: str
    ) -> GenerateResponse:
        return decode_response(body, request, model_version)

    def decode_stream(
        self, frames: AsyncIterator[SSEFrame], request: GenerateRequest, model_version: str
    ) -> AsyncGenerator[StreamEvent, None]:
        return decode_stream(frames, request, model_version)

    def classify_error(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> UpstreamError:
        return classify_error(status, headers, body)
