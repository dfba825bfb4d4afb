"""The caller dialects the gateway speaks: one codec each, registered here and nowhere else.
The request frame (api/frame) and the error renderer reach a dialect only through this table;
a new dialect is a folder with its `caller_codec.py` and one line below."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cometgate.dialects.anthropic.caller_codec import AnthropicCodec
from cometgate.dialects.caller_codec import InboundCodec
from cometgate.dialects.gemini.caller_codec import GeminiCodec
from cometgate.dialects.openai.caller_codec import OpenAICodec
from cometgate.dialects.responses.caller_codec import ResponsesCodec

CALLER_CODECS: Mapping[str, InboundCodec] = MappingProxyType({
    "gemini": GeminiCodec(),
    "openai": OpenAICodec(),
    "anthropic": AnthropicCodec(),
    "responses": ResponsesCodec(),
})
