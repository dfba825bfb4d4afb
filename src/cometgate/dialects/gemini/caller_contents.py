"""Gemini `Content`/`Part` (normalised) → canonical messages.

Parts with no canonical meaning (code execution, server-side tool invocations) and part
metadata (video offsets, media resolution, part metadata) are left out of the message and
reported as `Untranslated`, their JSON kept for a Gemini upstream.
"""

from __future__ import annotations

from typing import Any

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    Message,
    Part,
    ReasoningPart,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from cometgate.dialects.gemini.caller_context import DecodeContext
from cometgate.dialects.gemini.protojson import Normalised, to_json
from cometgate.dialects.gemini.schema import message_type

_ROLES: dict[str, Role] = {"user": "user", "model": "assistant"}

# Part data with no canonical meaning: (proto name, camelCase name, reason, droppable).
# A past turn's code and its result are left out for other upstreams: the text of that turn
# says what came of them, and a conversation with code execution goes on (google-genai's chats
# send every past part back).
_CODE_REASON = "a past turn's code execution parts are kept only for Gemini models"
_FOREIGN_DATA = (
    ("executable_code", "executableCode", _CODE_REASON, True),
    ("code_execution_result", "codeExecutionResult", _CODE_REASON, True),
    ("tool_call", "toolCall", "server-side tool invocations exist only on Gemini models", False),
    ("tool_response", "toolResponse", "server-side tool invocations exist only on Gemini models",
     False),
)
# Part metadata with no canonical meaning: (proto name, camelCase name, droppable).
# Media resolution and video clipping change what the model sees of the input; part metadata
# is opaque caller data that only Gemini echoes.
_FOREIGN_METADATA = (
    ("video_metadata", "videoMetadata", False),
    ("media_resolution", "mediaResolution", False),
    ("part_metadata", "partMetadata", True),
)
_FOREIGN_NAMES = frozenset(
    [name for name, _, _ in _FOREIGN_METADATA] + [name for name, _, _, _ in _FOREIGN_DATA]
)
_PART = message_type("Part")
_FUNCTION_RESPONSE = message_type("FunctionResponse")
# functionResponse fields kept for Gemini: camelCase name → droppable. Multimodal tool results
# change what the model sees; scheduling hints only tune the Live API and are meaningless to a
# single generation.
_RESPONSE_EXTRAS = {"parts": False, "willContinue": True, "scheduling": True}


def decode_contents(contents: list[Normalised], ctx: DecodeContext) -> tuple[Message, ...]:
    messages = []
    for i, content in enumerate(contents):
        message = _decode_content(content, f"contents[{i}]", ctx)
        if message is not None:
            messages.append(message)
    return tuple(messages)


def _decode_content(content: Normalised, path: str, ctx: DecodeContext) -> Message | None:
    role_name = content.get("role") or "user"
    role = _ROLES.get(role_name)
    if role is None:
        ctx.violation(f"{path}.role", "Please use a valid role: user, model.")
        return None
    parts_data = content.get("parts") or []
    if not parts_data:
        ctx.violation(f"{path}.parts", "contents.parts must not be empty.")
        return None
    parts: list[Part] = []
    for j, part_data in enumerate(parts_data):
        part = _decode_part(part_data, f"{path}.parts[{j}]", ctx)
        if part is not None:
            parts.append(part)
    return Message(role=role, parts=tuple(parts))


def decode_system_instruction(content: Normalised, ctx: DecodeContext) -> tuple[Part, ...]:
    texts: list[Part] = []
    for j, part in enumerate(content.get("parts") or []):
        path = f"system_instruction.parts[{j}]"
        if "text" not in part:
            ctx.violation(path, "Only text parts are supported in system instructions.")
        else:
            texts.append(TextPart(text=part["text"]))
    return tuple(texts)


def _decode_part(part: Normalised, path: str, ctx: DecodeContext) -> Part | None:
    if not _FOREIGN_NAMES.isdisjoint(part) and _record_foreign(part, path, ctx):
        return None
    decoded = _decode_data(part, path, ctx)
    signature = part.get("thought_signature")
    if signature is not None and not _carries_signature(decoded):
        ctx.untranslated_field(
            f"{_camel_path(path)}.thoughtSignature",
            "a thought signature on this kind of part is only understood by Gemini models",
            to_json(_PART, part, only=("thoughtSignature",)).get("thoughtSignature"),
            droppable=True,
        )
    return decoded


def _record_foreign(part: Normalised, path: str, ctx: DecodeContext) -> bool:
    """Report the part's Gemini-only metadata and data; True if its data is Gemini-only (the
    part then has no canonical form)."""
    camel_path = _camel_path(path)
    for proto_name, camel, droppable in _FOREIGN_METADATA:
        if proto_name in part:
            raw = to_json(_PART, {proto_name: part[proto_name]})[camel]
            ctx.untranslated_field(
                f"{camel_path}.{camel}",
                f"{camel} is only understood by Gemini models",
                raw,
                droppable=droppable,
            )
    for proto_name, camel, reason, droppable in _FOREIGN_DATA:
        if proto_name in part:
            ctx.untranslated_field(
                f"{camel_path}.{camel}", reason, to_json(_PART, part), droppable=droppable
            )
            return True
    return False


def _carries_signature(part: Part | None) -> bool:
    return isinstance(part, TextPart | ReasoningPart | ToolCallPart)


def _decode_data(part: Normalised, path: str, ctx: DecodeContext) -> Part | None:
    signature: bytes | None = part.get("thought_signature")
    if "text" in part:
        if part.get("thought"):
            return ReasoningPart(text=part["text"], signature=signature)
        return TextPart(text=part["text"], signature=signature)
    if "inline_data" in part:
        blob = part["inline_data"]
        return BlobPart(mime_type=blob.get("mime_type", ""), data=blob.get("data", b""))
    if "file_data" in part:
        ref = part["file_data"]
        return FileRefPart(uri=ref.get("file_uri", ""), mime_type=ref.get("mime_type"))
    if "function_call" in part:
        return _decode_function_call(part["function_call"], signature, f"{path}.function_call", ctx)
    if "function_response" in part:
        return _decode_function_response(
            part["function_response"], f"{path}.function_response", ctx
        )
    ctx.violation(f"{path}.data", "required oneof field 'data' must have one initialized field")
    return None


def _decode_function_call(
    call: Normalised, signature: bytes | None, path: str, ctx: DecodeContext
) -> ToolCallPart | None:
    args = call.get("args", {})
    if not isinstance(args, dict):
        ctx.violation(f"{path}.args", "args must be a JSON object.")
        return None
    return ToolCallPart(
        name=call.get("name", ""), arguments=args, call_id=call.get("id"), signature=signature
    )


def _decode_function_response(
    response: Normalised, path: str, ctx: DecodeContext
) -> ToolResultPart | None:
    body = response.get("response", {})
    if not isinstance(body, dict):
        ctx.violation(f"{path}.response", "response must be a JSON object.")
        return None
    camel_path = _camel_path(path)
    extras: dict[str, Any] = to_json(_FUNCTION_RESPONSE, response, only=_RESPONSE_EXTRAS)
    for camel, droppable in _RESPONSE_EXTRAS.items():
        if camel in extras:
            ctx.untranslated_field(
                f"{camel_path}.{camel}",
                f"functionResponse.{camel} is only understood by Gemini models",
                extras[camel],
                droppable=droppable,
            )
    return ToolResultPart(name=response.get("name", ""), response=body, call_id=response.get("id"))


def _camel_path(snake_path: str) -> str:
    return snake_path.replace("function_response", "functionResponse").replace(
        "function_call", "functionCall"
    )
