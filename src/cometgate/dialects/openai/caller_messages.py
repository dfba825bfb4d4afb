"""OpenAI chat `messages` → the canonical system instruction and conversation.

- system and developer messages become system text, in order, wherever they stand (the
  canonical request has one system instruction; outbound joins its parts with newlines);
- each user and assistant message stays one canonical message, so OpenAI → canonical →
  OpenAI gives the same messages back;
- the tool messages that follow one assistant turn become one user message holding every
  result (parallel calls), each named after the call it answers: a tool message must answer
  a call of the assistant message just before it (OpenAI refuses anything else too);
- a tool message's content follows the convention of `tool_content`;
- what has no canonical slot (a participant `name`, an image `detail`) is reported as
  droppable `Untranslated`; content no upstream could be given (audio, files) is refused.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Untranslated,
)
from cometgate.dialects.openai.caller_fields import (
    invalid_type,
    invalid_value,
    missing,
    optional_object,
    optional_str,
    required_str,
    unsupported_value,
)
from cometgate.dialects.openai.message_fields import parse_arguments, reasoning_text
from cometgate.dialects.openai.tool_content import tool_result_response
from cometgate.errors import InvalidRequest

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_DATA_URL = re.compile(r"data:(?P<mime>[^;,]+)(?P<params>(?:;[^;,]*)*);base64,(?P<data>.*)",
                       re.DOTALL)
# OpenAI's image_url takes PNG, JPEG, GIF and WebP. A URL whose name does not tell which is
# labelled JPEG, the commonest: upstreams that need a MIME type (Gemini) need a concrete one.
_DEFAULT_IMAGE_TYPE = "image/jpeg"
_REFUSED_PARTS = {
    "input_audio": "audio input is not supported by this gateway",
    "file": "file inputs are not supported by this gateway; send images as image_url",
}


@dataclass(frozen=True, slots=True)
class Conversation:
    system: tuple[Part, ...]
    messages: tuple[Message, ...]
    untranslated: tuple[Untranslated, ...]


@dataclass(slots=True)
class _Decoder:
    system: list[Part] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    untranslated: list[Untranslated] = field(default_factory=list)
    results: list[Part] = field(default_factory=list)  # tool results waiting for their turn
    open_calls: dict[str, str] = field(default_factory=dict)  # id → name, latest assistant
    answered: set[str] = field(default_factory=set)

    def flush_results(self) -> None:
        if self.results:
            self.messages.append(Message("user", tuple(self.results)))
            self.results = []

    def close_calls(self) -> None:
        self.flush_results()
        self.open_calls, self.answered = {}, set()


def decode_messages(raw: list[Any]) -> Conversation:
    decoder = _Decoder()
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid_type(where, "an object", message)
        _decode_message(decoder, where, message)
    decoder.flush_results()
    return Conversation(tuple(decoder.system), tuple(decoder.messages),
                        tuple(decoder.untranslated))


def _decode_message(decoder: _Decoder, where: str, message: dict[str, Any]) -> None:
    role = required_str(message, "role", f"{where}.role")
    if role not in _ROLES:
        raise unsupported_value(f"{where}.role", role, _ROLES)
    _note_name(decoder, where, message)
    if role in ("system", "developer"):
        decoder.system.extend(_text_parts(message.get("content"), f"{where}.content"))
    elif role == "user":
        decoder.close_calls()
        decoder.messages.append(Message("user", _user_parts(decoder, where, message)))
    elif role == "assistant":
        decoder.close_calls()
        decoder.messages.append(_assistant(decoder, where, message))
    elif role == "tool":
        decoder.results.append(_tool_result(decoder, where, message))
    else:
        raise invalid_value(
            f"{where}.role",
            "legacy 'function' messages are not supported; answer tool calls with 'tool' "
            "messages.",
        )


def _note_name(decoder: _Decoder, where: str, message: dict[str, Any]) -> None:
    if optional_str(message, "name", f"{where}.name") is not None:
        decoder.untranslated.append(Untranslated(
            f"{where}.name", "participant names are an OpenAI feature", droppable=True))


# --- text --------------------------------------------------------------------------------------


def _text_parts(content: object, where: str) -> tuple[TextPart, ...]:
    """A string, or an array of text parts (system, developer and tool messages)."""
    if isinstance(content, str):
        return (TextPart(content),)
    if content is None:
        raise missing(where)
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array of text parts", content)
    return tuple(TextPart(_text_of(part, f"{where}[{index}]"))
                 for index, part in enumerate(content))


def _text_of(part: object, where: str) -> str:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = required_str(part, "type", f"{where}.type")
    if kind != "text":
        raise unsupported_value(f"{where}.type", kind, ("text",))
    return required_str(part, "text", f"{where}.text")


# --- user --------------------------------------------------------------------------------------


def _user_parts(decoder: _Decoder, where: str, message: dict[str, Any]) -> tuple[Part, ...]:
    content = message.get("content")
    if isinstance(content, str):
        return (TextPart(content),)
    if content is None:
        raise missing(f"{where}.content")
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "a string or an array of content parts", content)
    if not content:
        raise invalid_value(f"{where}.content", "expected a non-empty array of content parts.")
    return tuple(_user_part(decoder, f"{where}.content[{index}]", part)
                 for index, part in enumerate(content))


def _user_part(decoder: _Decoder, where: str, part: object) -> Part:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = required_str(part, "type", f"{where}.type")
    if kind == "text":
        return TextPart(required_str(part, "text", f"{where}.text"))
    if kind == "image_url":
        return _image(decoder, f"{where}.image_url", part.get("image_url"))
    if kind in _REFUSED_PARTS:
        raise InvalidRequest(f"{where}: {_REFUSED_PARTS[kind]}.",
                             violations={where: _REFUSED_PARTS[kind]})
    raise unsupported_value(f"{where}.type", kind, ("text", "image_url"))


def _image(decoder: _Decoder, where: str, image: object) -> Part:
    if image is None:
        raise missing(where)
    if not isinstance(image, dict):
        raise invalid_type(where, "an object", image)
    url = required_str(image, "url", f"{where}.url")
    detail = optional_str(image, "detail", f"{where}.detail")
    if detail not in (None, "auto"):
        decoder.untranslated.append(Untranslated(
            f"{where}.detail", "image detail is an OpenAI setting", droppable=True))
    if url.startswith("data:"):
        return _inline_image(f"{where}.url", url)
    if url.startswith(("https://", "http://")):
        guessed, _ = mimetypes.guess_type(url.partition("?")[0])
        image_type = guessed if guessed and guessed.startswith("image/") else None
        return FileRefPart(url, image_type or _DEFAULT_IMAGE_TYPE)
    raise invalid_value(f"{where}.url", "expected an http(s) URL or a base64 data URL.")


def _inline_image(where: str, url: str) -> BlobPart:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise invalid_value(where, "expected a base64 data URL (data:image/png;base64,...).")
    mime = match["mime"].strip().lower()
    if not mime.startswith("image/"):
        raise invalid_value(where, f"{mime} is not an image type.")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(where, "the image data is not valid base64.") from None
    return BlobPart(mime, data)


# --- assistant ---------------------------------------------------------------------------------


def _assistant(decoder: _Decoder, where: str, message: dict[str, Any]) -> Message:
    for refused in ("audio", "function_call"):
        if message.get(refused) is not None:
            raise invalid_value(f"{where}.{refused}",
                                f"'{refused}' in assistant messages is not supported.")
    parts: list[Part] = []
    thought = reasoning_text(message)
    if thought is not None:
        parts.append(ReasoningPart(thought))
    parts.extend(_assistant_text(where, message))
    parts.extend(_tool_calls(decoder, where, message.get("tool_calls")))
    if not parts:
        raise invalid_value(f"{where}.content",
                            "an assistant message needs content or tool_calls.")
    return Message("assistant", tuple(parts))


def _assistant_text(where: str, message: dict[str, Any]) -> list[TextPart]:
    """Content (a string, or text and refusal parts) and a refusal, as text: both are what
    the model said. Empty text is left out, as OpenAI's own `"content": ""` beside calls."""
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        texts.extend(_assistant_part(part, f"{where}.content[{index}]")
                     for index, part in enumerate(content))
    elif content is not None:
        raise invalid_type(f"{where}.content", "a string or an array of content parts", content)
    refusal = optional_str(message, "refusal", f"{where}.refusal")
    if refusal:
        texts.append(refusal)
    return [TextPart(text) for text in texts if text]


def _assistant_part(part: object, where: str) -> str:
    if isinstance(part, dict) and part.get("type") == "refusal":
        return required_str(part, "refusal", f"{where}.refusal")
    if isinstance(part, dict) and part.get("type") not in (None, "text"):
        raise unsupported_value(f"{where}.type", part.get("type"), ("text", "refusal"))
    return _text_of(part, where)


def _tool_calls(decoder: _Decoder, where: str, raw: object) -> list[ToolCallPart]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_type(f"{where}.tool_calls", "an array", raw)
    return [_tool_call(decoder, f"{where}.tool_calls[{index}]", item)
            for index, item in enumerate(raw)]


def _tool_call(decoder: _Decoder, where: str, item: object) -> ToolCallPart:
    """The call, registered as open: the tool messages that follow may answer it."""
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = required_str(item, "type", f"{where}.type")
    if kind != "function":
        raise unsupported_value(f"{where}.type", kind, ("function",))
    call_id = required_str(item, "id", f"{where}.id")
    if call_id in decoder.open_calls:
        raise invalid_value(f"{where}.id", f"duplicate tool call id '{call_id}'.")
    function = optional_object(item, "function", f"{where}.function")
    if function is None:
        raise missing(f"{where}.function")
    name = required_str(function, "name", f"{where}.function.name")
    arguments = parse_arguments(function.get("arguments"))
    if arguments is None:
        raise invalid_value(f"{where}.function.arguments",
                            "expected a JSON object encoded as a string.")
    decoder.open_calls[call_id] = name
    return ToolCallPart(name, arguments, call_id)


# --- tool --------------------------------------------------------------------------------------


def _tool_result(decoder: _Decoder, where: str, message: dict[str, Any]) -> ToolResultPart:
    call_id = required_str(message, "tool_call_id", f"{where}.tool_call_id")
    if not decoder.open_calls:
        raise invalid_value(
            f"{where}.role",
            "messages with role 'tool' must be a response to a preceding message with "
            "'tool_calls'.",
        )
    name = decoder.open_calls.get(call_id)
    if name is None:
        raise invalid_value(f"{where}.tool_call_id", f"'{call_id}' answers no call of the "
                                                     "preceding assistant message's tool_calls.")
    if call_id in decoder.answered:
        raise invalid_value(f"{where}.tool_call_id",
                            f"the tool call '{call_id}' was already answered.")
    decoder.answered.add(call_id)
    texts = _text_parts(message.get("content"), f"{where}.content")
    content = "".join(part.text for part in texts)
    return ToolResultPart(name, tool_result_response(content), call_id)
