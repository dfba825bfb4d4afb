"""cometgate: a self-hosted LLM API gateway whose first language is the Gemini-native API."""

__version__ = "0.1.0"
