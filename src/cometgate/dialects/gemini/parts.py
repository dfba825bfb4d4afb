"""Gemini's words for what an answer to a Gemini caller and a request to (or answer from) a
Gemini upstream share: a canonical part as a `Part` object, finish reasons and code execution
outcomes. One table each, so that both sides of the gateway speak them alike."""

from __future__ import annotations

import base64
from typing import Any

from cometgate.canonical import (
    BlobPart,
    CodeOutcome,
    CodePart,
    CodeResultPart,
    FileRefPart,
    FinishReason,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

FINISH_REASONS = {
    FinishReason.STOP: "STOP",
    FinishReason.MAX_TOKENS: "MAX_TOKENS",
    FinishReason.SAFETY: "SAFETY",
    FinishReason.RECITATION: "RECITATION",
    FinishReason.MALFORMED_TOOL_CALL: "MALFORMED_FUNCTION_CALL",
    FinishReason.OTHER: "OTHER",
}
CODE_OUTCOMES = {
    CodeOutcome.OK: "OUTCOME_OK",
    CodeOutcome.FAILED: "OUTCOME_FAILED",
    CodeOutcome.DEADLINE_EXCEEDED: "OUTCOME_DEADLINE_EXCEEDED",
}


def encode_part(part: Part) -> dict[str, Any]:
    out: dict[str, Any]
    signature: bytes | None = None
    match part:
        case ReasoningPart(text=text, signature=signature):
            out = {"text": text, "thought": True}
        case TextPart(text=text, signature=signature):
            out = {"text": text}
        case ToolCallPart(name=name, arguments=arguments, call_id=call_id, signature=signature):
            call: dict[str, Any] = {"id": call_id} if call_id else {}
            out = {"functionCall": {**call, "name": name, "args": dict(arguments)}}
        case BlobPart(mime_type=mime_type, data=data):
            out = {"inlineData": {"mimeType": mime_type, "data": _b64(data)}}
        case FileRefPart(uri=uri, mime_type=mime_type):
            ref = {"mimeType": mime_type} if mime_type else {}
            out = {"fileData": {**ref, "fileUri": uri}}
        case ToolResultPart(name=name, response=response, call_id=call_id):
            result: dict[str, Any] = {"id": call_id} if call_id else {}
            out = {"functionResponse": {**result, "name": name, "response": dict(response)}}
        case CodePart(code=code, language=language):
            out = {"executableCode": {"language": language, "code": code}}
        case CodeResultPart(outcome=outcome, output=output):
            ran: dict[str, Any] = {"outcome": CODE_OUTCOMES[outcome]}
            if output:  # proto3 leaves out an empty string
                ran["output"] = output
            out = {"codeExecutionResult": ran}
    if signature:
        out["thoughtSignature"] = _b64(signature)
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
