"""The conversation (system instruction + messages) as OpenAI chat messages.

Canonical tool results travel inside user messages, as Gemini carries them; OpenAI wants one
`{"role": "tool"}` message per result, right after the assistant message that made the calls,
each naming the call's id. Gemini callers often omit ids (google-genai's automatic function
calling sends functionResponse without one), so ids missing on calls are synthesised as
"call_<turn>_<n>" (stable for a given request), and a result without an id is paired with the
earliest unanswered call of the same name in the preceding assistant turn — parallel calls to
one function therefore never collide.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    GenerateRequest,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from cometgate.dialects.openai.tool_content import failed_call, tool_message_content
from cometgate.dialects.tool_calls import CallLedger, PendingCall
from cometgate.dialects.upstream_answers import describe_part, unsupported_part
from cometgate.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class History:
    messages: list[dict[str, Any]]
    dropped: tuple[str, ...]


@dataclass(slots=True)
class _Encoder:
    messages: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    ledger: CallLedger = field(default_factory=lambda: CallLedger("call"))


def encode_history(request: GenerateRequest) -> History:
    encoder = _Encoder()
    if request.system:
        encoder.messages.append({"role": "system", "content": _system_text(request.system)})
    for turn, message in enumerate(request.messages):
        if message.role == "assistant":
            _add_assistant(encoder, turn, message)
        else:
            _add_user(encoder, turn, message)
    return History(encoder.messages, tuple(encoder.dropped))


def image_data_url(mime_type: str, data: bytes) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def _system_text(parts: tuple[Part, ...]) -> str:
    texts: list[str] = []
    for index, part in enumerate(parts):
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                f"the system instruction can only hold text, not {describe_part(part)}",
                violations={f"system[{index}]": "must be text"},
            )
        texts.append(part.text)
    return "\n".join(texts)


def _add_assistant(encoder: _Encoder, turn: int, message: Message) -> None:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    encoder.ledger.new_turn()
    for index, part in enumerate(message.parts):
        where = f"messages[{turn}].parts[{index}]"
        _note_signature(encoder, where, part)
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            tool_calls.append(_tool_call(encoder.ledger.call(part, turn), part))
        elif isinstance(part, ReasoningPart):
            encoder.dropped.append(f"{where}: reasoning (OpenAI has no input field for it)")
        else:
            raise unsupported_part(where, part, "a model turn")
    if not texts and not tool_calls:
        return  # only reasoning: nothing the upstream could read
    entry: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        entry["tool_calls"] = tool_calls
    encoder.messages.append(entry)


def _tool_call(call: PendingCall, part: ToolCallPart) -> dict[str, Any]:
    arguments = orjson.dumps(dict(part.arguments)).decode()
    return {"id": call.id, "type": "function",
            "function": {"name": part.name, "arguments": arguments}}


def _add_user(encoder: _Encoder, turn: int, message: Message) -> None:
    content: list[dict[str, Any]] = []
    for index, part in enumerate(message.parts):
        where = f"messages[{turn}].parts[{index}]"
        _note_signature(encoder, where, part)
        if isinstance(part, ToolResultPart):
            # Tool messages must directly follow the assistant turn, before any user text.
            encoder.messages.append(_tool_message(encoder.ledger, where, part))
            if failed_call(part.response):
                encoder.dropped.append(
                    f"{where}.is_error: an OpenAI tool message cannot mark a failed call")
        elif isinstance(part, ReasoningPart):
            encoder.dropped.append(f"{where}: reasoning (OpenAI has no input field for it)")
        elif isinstance(part, ToolCallPart):
            raise InvalidRequest(
                f"{where}: a function call can only appear in a model turn",
                violations={where: "function call outside a model turn"},
            )
        else:
            content.append(_user_content(where, part))
    if content:
        encoder.messages.append({"role": "user", "content": _compact(content)})


def _compact(content: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # A lone text part goes as a plain string: the form every compatible server accepts.
    if len(content) == 1 and content[0]["type"] == "text":
        text: str = content[0]["text"]
        return text
    return content


def _user_content(where: str, part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, BlobPart) and part.mime_type.startswith("image/"):
        url = image_data_url(part.mime_type, part.data)
        return {"type": "image_url", "image_url": {"url": url}}
    if (isinstance(part, FileRefPart) and (part.mime_type or "").startswith("image/")
            and part.uri.startswith(("http://", "https://"))):
        return {"type": "image_url", "image_url": {"url": part.uri}}
    raise unsupported_part(where, part, "this model's input")


def _tool_message(ledger: CallLedger, where: str, result: ToolResultPart) -> dict[str, Any]:
    call = ledger.answer(result, where)
    return {"role": "tool", "tool_call_id": call.id,
            "content": tool_message_content(result.response)}


def _note_signature(encoder: _Encoder, where: str, part: Part) -> None:
    signature = getattr(part, "signature", None)
    if signature is not None and not isinstance(part, ReasoningPart):
        encoder.dropped.append(f"{where}.signature: thought signatures are Gemini-only")


