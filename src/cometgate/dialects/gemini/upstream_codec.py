"""The Gemini API as an OutboundCodec: canonical requests translated for a Gemini upstream
(callers of another dialect), driven by the HTTP provider."""

from __future__ import annotations

import re
from urllib.parse import quote

from cometgate.canonical import GenerateRequest
from cometgate.dialects.gemini.upstream_errors import classify_error
from cometgate.dialects.gemini.upstream_request import encode_request
from cometgate.dialects.gemini.upstream_response import decode_response, decode_stream
from cometgate.dialects.upstream_codec import Encoded

_VERSION = re.compile(r"[A-Za-z0-9]*")
_MODEL_PREFIXES = ("models/", "tunedModels/")


class GeminiCodec:
    """For a provider whose base URL is the server root
    (https://generativelanguage.googleapis.com, or http://gateway/prefix). `version` is the
    API version path segment ("v1beta", "v1", or "" for none). `vouch_unsigned_calls`: see
    `upstream_request.encode_request`."""

    def __init__(self, version: str = "v1beta", *, vouch_unsigned_calls: bool = False) -> None:
        if not _VERSION.fullmatch(version):
            raise ValueError(f"not a Gemini API version: {version!r}")
        self.version = version
        self.vouch_unsigned_calls = vouch_unsigned_calls

    def path(self, upstream_model: str, *, stream: bool) -> str:
        """`/v1beta/models/<id>:generateContent`, or `:streamGenerateContent?alt=sse`; a
        model already named `models/…` or `tunedModels/…` is not prefixed again."""
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return self.method_path(upstream_model, method)

    def method_path(self, upstream_model: str, method: str) -> str:
        """`/v1beta/models/<id>:<method>`, e.g. for `countTokens`."""
        model = upstream_model
        if not model.startswith(_MODEL_PREFIXES):
            model = "models/" + model
        # Quoted so that a model name cannot add a query or climb out of the path.
        model = quote(model, safe="/").replace("..", "%2E%2E")
        version = f"/{self.version}" if self.version else ""
        return f"{version}/{model}:{method}"

    def headers(self, credential: str | None, *, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if credential:
            headers["x-goog-api-key"] = credential
        return headers

    def encode_request(
        self, request: GenerateRequest, upstream_model: str, *, stream: bool
    ) -> Encoded:
        return encode_request(request, upstream_model, stream=stream,
                              vouch_unsigned_calls=self.vouch_unsigned_calls)

    # Reading answers needs no configuration: the dialect's pure functions serve as they are.
    decode_response = staticmethod(decode_response)
    decode_stream = staticmethod(decode_stream)
    classify_error = staticmethod(classify_error)
