"""The Anthropic Messages dialect, spoken to upstreams (POST /v1/messages)."""

from cometgate.dialects.anthropic.codec import AnthropicCodec
from cometgate.dialects.anthropic.encode import AnthropicOptions

__all__ = ["AnthropicCodec", "AnthropicOptions"]
