"""The OpenAI Chat Completions dialect as an OutboundCodec object, configured per upstream."""

from __future__ import annotations

from cometgate.canonical import GenerateRequest
from cometgate.dialects.openai.upstream_request import (
    OpenAIOptions,
    classify_error,
    decode_response,
    decode_stream,
    encode_request,
)
from cometgate.dialects.upstream_codec import Encoded


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

    # Reading answers needs no configuration: the dialect's pure functions serve as they are.
    decode_response = staticmethod(decode_response)
    decode_stream = staticmethod(decode_stream)
    classify_error = staticmethod(classify_error)
