"""An Anthropic caller's `system` and `messages` → canonical system parts and messages.

Read as Anthropic reads them:
- `content` is a string (one text block) or a list of blocks. Every message needs some, except
  an optional final assistant message (a prefill), which is left out when empty. Text blocks
  may not be empty.
- Consecutive messages of one role are combined into one turn, as Anthropic combines them.
- User blocks: text, image, document, tool_result. Assistant blocks: text, thinking,
  redacted_thinking, tool_use. Anything else (server tool calls and their results, search
  results, container uploads) is refused: no other model could read it.
- `cache_control`, wherever it is (a block, a tool, a block inside a tool_result), is
  reported as untranslated but droppable: prompt caching changes only the cost, and only
  Anthropic's own service does it. `citations` on text (the caller's copy of an earlier
  answer's citations) are ignored.

Blocks → parts:
- image: base64 → BlobPart; url → FileRefPart typed by the URL's extension, image/jpeg when it
  has none (Anthropic sniffs the bytes; a canonical file reference names a type).
- document: base64 PDF → BlobPart application/pdf; plain-text source → BlobPart text/plain;
  url → FileRefPart application/pdf. Its `title`, `context` and `citations` only shape the
  answer: they are reported as dropped wherever they cannot be carried.
- tool_use → ToolCallPart (call_id = id). tool_result → ToolResultPart named after the tool_use
  with its id earlier in the conversation; the response is built as `tool_results` says, so an
  Anthropic upstream gets the block back as sent.
- thinking, redacted_thinking → see `caller_thinking`; a thinking block that carries another
  model's signature for the next block puts it back on that block's part.
Keys on a message or block that this decoder does not know are reported as untranslated.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from cometgate.canonical import (
    BlobPart,
    FileRefPart,
    Message,
    Part,
    Role,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Untranslated,
)
from cometgate.dialects.anthropic.caller_fields import (
    REQUIRED,
    array,
    boolean,
    invalid,
    mapping,
    string,
    tagged,
)
from cometgate.dialects.anthropic.caller_thinking import (
    Carried,
    decode_redacted,
    decode_thinking,
)
from cometgate.dialects.anthropic.image_types import IMAGE_TYPES
from cometgate.dialects.anthropic.tool_results import (
    TOOL_RESULT_BLOCK_TYPES,
    tool_result_response,
)

USER_BLOCKS = ("text", "image", "document", "tool_result")
ASSISTANT_BLOCKS = ("text", "thinking", "redacted_thinking", "tool_use")

_KNOWN_KEYS = {
    "text": {"text", "citations"},
    "image": {"source"},
    "document": {"source", "title", "context", "citations"},  # the last three: see below
    "tool_use": {"id", "name", "input"},
    "tool_result": {"tool_use_id", "content", "is_error"},
    "thinking": {"thinking", "signature"},
    "redacted_thinking": {"data"},
    "message": {"role", "content"},
}
_ALWAYS_IGNORED = frozenset({"type"})
CACHE_CONTROL = "cache_control"
CACHING = "prompt caching is a service of Anthropic's own API"
_DOCUMENT_EXTRAS = ("citations", "context", "title")
_IMAGE_EXTENSIONS = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                     ".gif": "image/gif", ".webp": "image/webp"}
_PDF = "application/pdf"


def decode_system(value: object, untranslated: list[Untranslated]) -> tuple[Part, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),) if value else ()
    parts: list[Part] = []
    for index, raw in enumerate(array(value, "system")):
        path = f"system.{index}"
        block, kind = tagged(raw, path, ("text",))
        note_unknown(block, _KNOWN_KEYS[kind], path, untranslated)
        parts.append(TextPart(_text(block, path)))
    return tuple(parts)


def decode_messages(value: object, untranslated: list[Untranslated]) -> tuple[Message, ...]:
    raw_messages = array(value, "messages")
    decoder = _Decoder(untranslated)
    for index, raw in enumerate(raw_messages):
        decoder.add(index, raw, final=index == len(raw_messages) - 1)
    return tuple(Message(role, tuple(parts)) for role, parts in decoder.turns)


def note_unknown(fields: Mapping[str, Any], known: set[str], path: str,
                 untranslated: list[Untranslated]) -> None:
    for key, value in fields.items():
        if key in known or key in _ALWAYS_IGNORED or value is None:
            continue
        if key == CACHE_CONTROL:
            untranslated.append(Untranslated(f"{path}.{key}", CACHING, droppable=True))
            continue
        untranslated.append(
            Untranslated(f"{path}.{key}", "only Anthropic's own API understands this field"))


@dataclass(slots=True)
class _Decoder:
    untranslated: list[Untranslated]
    tool_names: dict[str, str] = field(default_factory=dict)  # tool_use id → tool name
    turns: list[tuple[Role, list[Part]]] = field(default_factory=list)

    def add(self, index: int, raw: object, *, final: bool) -> None:
        path = f"messages.{index}"
        message = mapping(raw, path)
        role = _role(message.get("role"), f"{path}.role")
        note_unknown(message, _KNOWN_KEYS["message"], path, self.untranslated)
        parts = self._content(message.get("content"), path, role)
        if not parts:
            if final and role == "assistant":
                return
            raise invalid(path, "all messages must have non-empty content except for the "
                                "optional final assistant message")
        if self.turns and self.turns[-1][0] == role:
            self.turns[-1][1].extend(parts)
        else:
            self.turns.append((role, parts))

    def _content(self, content: object, path: str, role: Role) -> list[Part]:
        if isinstance(content, str):
            return [TextPart(content)] if content else []
        parts: list[Part] = []
        carried: bytes | None = None
        for index, raw in enumerate(array(content, f"{path}.content")):
            part = self._block(raw, f"{path}.content.{index}", role)
            if carried is not None and isinstance(part, TextPart | ToolCallPart):
                part = replace(part, signature=carried)
            elif carried is not None:
                parts.append(TextPart("", carried))  # nothing to carry it: keep it in place
            carried = None
            if isinstance(part, Carried):
                carried = part.signature
            else:
                parts.append(part)
        if carried is not None:
            parts.append(TextPart("", carried))
        return parts

    def _block(self, raw: object, path: str, role: Role) -> Part | Carried:
        block, kind = _tagged_block(raw, path, role)
        note_unknown(block, _KNOWN_KEYS[kind], path, self.untranslated)
        if kind == "text":
            return TextPart(_text(block, path))
        if kind == "image":
            return _image(block, path)
        if kind == "document":
            self._note_document_extras(block, path)
            return _document(block, path)
        if kind == "tool_use":
            return self._tool_use(block, path)
        if kind == "tool_result":
            return self._tool_result(block, path)
        if kind == "thinking":
            return decode_thinking(block, path)
        return decode_redacted(block, path)

    def _note_document_extras(self, block: Mapping[str, Any], path: str) -> None:
        for key in _DOCUMENT_EXTRAS:
            if block.get(key) is not None:
                self.untranslated.append(Untranslated(
                    f"{path}.{key}", "only Anthropic models read a document's title, context "
                    "and citation settings", droppable=True))

    def _tool_use(self, block: Mapping[str, Any], path: str) -> ToolCallPart:
        call_id = _non_empty(block.get("id"), f"{path}.id")
        name = _non_empty(block.get("name"), f"{path}.name")
        arguments = mapping(block.get("input"), f"{path}.input")
        self.tool_names[call_id] = name
        return ToolCallPart(name, dict(arguments), call_id)

    def _tool_result(self, block: Mapping[str, Any], path: str) -> ToolResultPart:
        call_id = string(block.get("tool_use_id"), f"{path}.tool_use_id")
        name = self.tool_names.get(call_id)
        if name is None:
            raise invalid(path, f"unexpected `tool_use_id` found in `tool_result` blocks: "
                                f"{call_id}. Each `tool_result` block must have a "
                                "corresponding `tool_use` block in the previous message.")
        content = _result_content(block.get("content"), f"{path}.content", self.untranslated)
        is_error = block.get("is_error")
        if is_error is not None:
            is_error = boolean(is_error, f"{path}.is_error")
        return ToolResultPart(name, tool_result_response(content, is_error), call_id)


# Anthropic's own words for a system message inside `messages` without its beta: Claude Code
# reads them ("Unexpected role", "input message role") as the sign to resend its mid-conversation
# system text inside a user turn, so other wording fails every one of its turns.
SYSTEM_ROLE = ('Unexpected role "system". The Messages API accepts a top-level `system` '
               'parameter, not "system" as an input message role.')


def _role(value: object, path: str) -> Role:
    if value == "user":
        return "user"
    if value == "assistant":
        return "assistant"
    if value == "system":
        raise invalid("messages", SYSTEM_ROLE)
    raise invalid(path, REQUIRED if value is None else "Input should be 'user' or 'assistant'")


def _tagged_block(raw: object, path: str, role: Role) -> tuple[Mapping[str, Any], str]:
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    kind = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(kind, str) and kind not in USER_BLOCKS + ASSISTANT_BLOCKS:
        raise invalid(f"{path}.type", f"`{kind}` blocks cannot be passed on to this model")
    return tagged(raw, path, allowed)


def _text(block: Mapping[str, Any], path: str) -> str:
    text = string(block.get("text"), f"{path}.text")
    if not text:
        raise invalid(f"{path}.text", "text content blocks must be non-empty")
    return text


def _non_empty(value: object, path: str) -> str:
    text = string(value, path)
    if not text:
        raise invalid(path, "String should have at least 1 character")
    return text


def _image(block: Mapping[str, Any], path: str) -> BlobPart | FileRefPart:
    source, kind = tagged(block.get("source"), f"{path}.source", ("base64", "url"))
    if kind == "url":
        url = string(source.get("url"), f"{path}.source.url")
        return FileRefPart(url, _image_type(url))
    media_type = string(source.get("media_type"), f"{path}.source.media_type")
    if media_type not in IMAGE_TYPES:
        raise invalid(f"{path}.source.media_type", "Input should be 'image/jpeg', "
                                                   "'image/png', 'image/gif' or 'image/webp'")
    return BlobPart(media_type, _base64(source.get("data"), f"{path}.source.data"))


def _image_type(url: str) -> str:
    extension = posixpath.splitext(urlsplit(url).path)[1].lower()
    return _IMAGE_EXTENSIONS.get(extension, "image/jpeg")


def _document(block: Mapping[str, Any], path: str) -> BlobPart | FileRefPart:
    source, kind = tagged(block.get("source"), f"{path}.source", ("base64", "text", "url"))
    if kind == "url":
        return FileRefPart(string(source.get("url"), f"{path}.source.url"), _PDF)
    media_type = string(source.get("media_type"), f"{path}.source.media_type")
    if kind == "text":
        if media_type != "text/plain":
            raise invalid(f"{path}.source.media_type", "Input should be 'text/plain'")
        return BlobPart(media_type, string(source.get("data"), f"{path}.source.data").encode())
    if media_type != _PDF:
        raise invalid(f"{path}.source.media_type", "Input should be 'application/pdf'")
    return BlobPart(media_type, _base64(source.get("data"), f"{path}.source.data"))


def _base64(value: object, path: str) -> bytes:
    try:
        return base64.b64decode(string(value, path), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(path, "Invalid base64 data") from None


def _result_content(value: object, path: str,
                    untranslated: list[Untranslated]) -> str | list[Any] | None:
    if value is None or isinstance(value, str):
        return value
    blocks = array(value, path)
    for index, raw in enumerate(blocks):
        block, kind = tagged(raw, f"{path}.{index}", tuple(sorted(TOOL_RESULT_BLOCK_TYPES)))
        if kind == "text":
            _text(block, f"{path}.{index}")
        if block.get(CACHE_CONTROL) is not None:
            untranslated.append(Untranslated(f"{path}.{index}.{CACHE_CONTROL}", CACHING,
                                             droppable=True))
    return blocks
