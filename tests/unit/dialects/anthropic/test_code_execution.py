"""Anthropic's code execution server tool read into canonical code parts."""

from __future__ import annotations

from typing import Any

import pytest

from cometgate.canonical import CodeOutcome, CodePart, CodeResultPart, GenerateRequest, Message
from cometgate.canonical import TextPart as Text
from cometgate.dialects.anthropic.code_execution import code_part, code_tool, result_part
from cometgate.dialects.anthropic.upstream_request import encode_request


@pytest.mark.parametrize(("content", "expected"), [
    ({"type": "code_execution_result", "stdout": "1\n", "stderr": "", "return_code": 0,
      "content": []}, CodeResultPart(CodeOutcome.OK, "1\n")),
    ({"type": "code_execution_result", "stdout": "a\n", "stderr": "Boom\n", "return_code": 2},
     CodeResultPart(CodeOutcome.FAILED, "a\nBoom\n")),
    ({"type": "code_execution_tool_result_error", "error_code": "execution_time_exceeded"},
     CodeResultPart(CodeOutcome.DEADLINE_EXCEEDED, "")),
    ({"type": "code_execution_tool_result_error", "error_code": "unavailable"},
     CodeResultPart(CodeOutcome.FAILED, "code execution failed: unavailable")),
    ("not a block", None),
])
def test_results(content: Any, expected: CodeResultPart | None) -> None:
    assert result_part(content) == expected


def test_only_the_code_tools_calls_are_code() -> None:
    assert code_part("code_execution", {"code": "print(1)"}) == CodePart("print(1)")
    assert code_part("web_search", {"query": "x"}) is None
    assert code_part("code_execution", {"code": 5}) is None


def test_the_tool_and_its_beta_header_go_together() -> None:
    request = GenerateRequest("m", (Message("user", (Text("hi"),)),), code_execution=True)
    encoded = encode_request(request, "claude-up", stream=False)
    assert encoded.body["tools"] == [{"type": "code_execution_20250522",
                                      "name": "code_execution"}]
    assert encoded.headers == (("anthropic-beta", "code-execution-2025-05-22"),)
    plain = encode_request(GenerateRequest("m", request.messages), "claude-up", stream=False)
    assert "tools" not in plain.body and plain.headers == ()
    assert code_tool(GenerateRequest("m", request.messages)) is None
