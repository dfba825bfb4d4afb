"""The Anthropic Messages dialect as an OutboundCodec object, configured per upstream."""

from __future__ import annotations

from cometgate.canonical import GenerateRequest
from cometgate.dialects.anthropic.upstream_errors import classify_error
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions, encode_request
from cometgate.dialects.anthropic.upstream_response import decode_response
from cometgate.dialects.anthropic.upstream_stream import decode_stream
from cometgate.dialects.upstream_codec import Encoded


class AnthropicCodec:
    """For a provider whose base URL is the server root (https://api.anthropic.com)."""

    def __init__(self, options: AnthropicOptions | None = None) -> None:
        self.options = options or AnthropicOptions()

    def path(self, upstream_model: str, *, stream: bool) -> str:
        return "/v1/messages"  # the model travels in the body, streaming in `stream`

    def headers(self, credential: str | None, *, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": self.options.version,
        }
        if self.options.beta:
            headers["anthropic-beta"] = ",".join(self.options.beta)
        if credential:
            headers["x-api-key"] = credential
        return headers

    def encode_request(
        self, request: GenerateRequest, upstream_model: str, *, stream: bool
    ) -> Encoded:
        return encode_request(request, upstream_model, stream=stream, options=self.options)

    # Reading answers needs no configuration: the dialect's pure functions serve as they are.
    decode_response = staticmethod(decode_response)
    decode_stream = staticmethod(decode_stream)
    classify_error = staticmethod(classify_error)
