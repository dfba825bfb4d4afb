"""The telemetry seam's names for what a caller asked, in the GenAI conventions' words."""

from __future__ import annotations

import pytest

from cometgate.tracing import operation_name


@pytest.mark.parametrize(("dialect", "embedding", "name"), [
    ("gemini", False, "generate_content"),
    ("openai", False, "chat"),
    ("anthropic", False, "chat"),
    ("responses", False, "chat"),
    ("gemini", True, "embeddings"),
    ("openai", True, "embeddings"),
])
def test_operation_names(dialect: str, embedding: bool, name: str) -> None:
    assert operation_name(dialect, embedding=embedding) == name
