"""Anthropic's code execution server tool: what is sent for a canonical code execution, and
how its blocks are read into canonical code parts.

Sent: the tool `{"type": "code_execution_20250522", "name": "code_execution"}`, with the beta
header `anthropic-beta: code-execution-2025-05-22`. Read, whole or streamed: a
`server_tool_use` block named code_execution holds the code in `input.code` → CodePart; its
`code_execution_tool_result` block holds `{"type": "code_execution_result", "stdout",
"stderr", "return_code"}` → CodeResultPart (OK on return code 0, FAILED otherwise; the output
is stdout, then stderr), or `{"type": "code_execution_tool_result_error", "error_code"}` →
DEADLINE_EXCEEDED for `execution_time_exceeded`, FAILED with the error code otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cometgate.canonical import CodeOutcome, CodePart, CodeResultPart, GenerateRequest

TOOL = {"type": "code_execution_20250522", "name": "code_execution"}
BETA = ("anthropic-beta", "code-execution-2025-05-22")
TOOL_NAME = "code_execution"
RESULT_BLOCK = "code_execution_tool_result"


def code_tool(request: GenerateRequest) -> dict[str, Any] | None:
    return dict(TOOL) if request.code_execution else None


def code_part(name: object, tool_input: object) -> CodePart | None:
    """The code of a `server_tool_use` block, when it is the code execution tool's."""
    code = tool_input.get("code") if isinstance(tool_input, Mapping) else None
    if name != TOOL_NAME or not isinstance(code, str):
        return None
    return CodePart(code)


def result_part(content: object) -> CodeResultPart | None:
    """The `content` of a `code_execution_tool_result` block."""
    if not isinstance(content, Mapping):
        return None
    if content.get("type") == "code_execution_tool_result_error":
        code = str(content.get("error_code") or "unavailable")
        if code == "execution_time_exceeded":
            return CodeResultPart(CodeOutcome.DEADLINE_EXCEEDED, "")
        return CodeResultPart(CodeOutcome.FAILED, f"code execution failed: {code}")
    stdout, stderr = content.get("stdout"), content.get("stderr")
    output = (stdout if isinstance(stdout, str) else "") + (
        stderr if isinstance(stderr, str) else "")
    ok = content.get("return_code") == 0
    return CodeResultPart(CodeOutcome.OK if ok else CodeOutcome.FAILED, output)
