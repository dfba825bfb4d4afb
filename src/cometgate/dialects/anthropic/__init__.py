"""The Anthropic Messages dialect, spoken to upstreams (POST /v1/messages)."""

from cometgate.dialects.anthropic.upstream_codec import AnthropicCodec
from cometgate.dialects.anthropic.upstream_request import AnthropicOptions

__all__ = ["AnthropicCodec", "AnthropicOptions"]
