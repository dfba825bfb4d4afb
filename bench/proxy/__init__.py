"""Gateway overhead against a mock upstream: direct, through cometgate, through LiteLLM."""
