"""A Responses request's `instructions` and `input` → the canonical system instruction and
conversation.

- `input` as a string is one user message;
- `message` items (the `type` may be left out, as the SDK's easy input messages do): user
  content becomes one user message; system and developer content joins the system text after
  `instructions`; assistant content (`output_text`, `refusal`) becomes assistant text;
- `reasoning` items become reasoning parts of the assistant turn that follows: with a seal,
  the parts sealed in their `encrypted_content` (reasoning_state; a token that does not open is
  a 400), else their summary text (`encrypted_content` is then reported as dropped);
- consecutive `function_call` items and assistant content make one assistant turn (parallel
  calls; a call within a `namespace` takes its flat name, tool_namespaces); consecutive
  `function_call_output` items make one user message of tool results,
  each named after the call it answers: an output must answer an earlier call;
- `web_search_call` items (a search an upstream ran for an earlier answer, replayed by
  clients such as Codex) are skipped: the search is over, and the answer that followed it
  carries what it found;
- `compaction` items (from `POST /v1/responses/compact`) become a user message holding the
  summary sealed in them (compaction; a token that does not open is a 400);
- `input_image` takes a base64 data URL or an http(s) URL (the same policy as chat images);
  `input_file` takes `file_data` (a data URL) or a `file_url`; a `file_id` needs a files API
  the gateway does not have and is refused, as are item types only OpenAI runs (tool calls of
  built-in tools, `item_reference`).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass, field, replace
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
    optional_str,
    required_str,
    unsupported_value,
)
from cometgate.dialects.openai.message_fields import parse_arguments
from cometgate.dialects.openai.tool_content import tool_result_response
from cometgate.dialects.responses.compaction import SUMMARY_HEADER, opened_summary
from cometgate.dialects.responses.reasoning_state import open_state
from cometgate.dialects.responses.tool_namespaces import flat_name
from cometgate.dialects.sealed_state import StateSeal
from cometgate.errors import InvalidRequest

_ROLES = ("user", "assistant", "system", "developer")
_DATA_URL = re.compile(r"data:(?P<mime>[^;,]+)(?P<params>(?:;[^;,]*)*);base64,(?P<data>.*)",
                       re.DOTALL)
_DEFAULT_IMAGE_TYPE = "image/jpeg"  # as for chat images: a concrete type for upstreams
_USER_PARTS = ("input_text", "input_image", "input_file")
_ASSISTANT_PARTS = ("output_text", "refusal")
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "compaction",
               "web_search_call")


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
    turn: list[Part] = field(default_factory=list)  # the assistant turn being gathered
    results: list[Part] = field(default_factory=list)  # tool results being gathered
    calls: dict[str, str] = field(default_factory=dict)  # call_id → name, every call so far
    seal: StateSeal | None = None
    carried: bytes | None = None  # a sealed signature for the next text or call part

    def assistant(self, parts: list[Part]) -> None:
        self.flush_results()
        if self.carried is not None and parts and isinstance(parts[0], TextPart | ToolCallPart):
            parts = [replace(parts[0], signature=self.carried), *parts[1:]]
            self.carried = None
        self.turn.extend(parts)

    def result(self, part: ToolResultPart) -> None:
        self.flush_turn()
        self.results.append(part)

    def user(self, parts: tuple[Part, ...]) -> None:
        self.flush()
        self.messages.append(Message("user", parts))

    def flush_turn(self) -> None:
        self.carried = None  # a signature never crosses into another turn
        if self.turn:
            self.messages.append(Message("assistant", tuple(self.turn)))
            self.turn = []

    def flush_results(self) -> None:
        if self.results:
            self.messages.append(Message("user", tuple(self.results)))
            self.results = []

    def flush(self) -> None:
        self.flush_turn()
        self.flush_results()


def decode_input(instructions: object, raw: object, seal: StateSeal | None = None,
                 ) -> Conversation:
    decoder = _Decoder(seal=seal)
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid_type("instructions", "a string", instructions)
        decoder.system.append(TextPart(instructions))
    if isinstance(raw, str):
        decoder.user((TextPart(raw),))
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            _decode_item(decoder, f"input[{index}]", item)
    else:
        raise invalid_type("input", "a string or an array of input items", raw)
    decoder.flush()
    if not decoder.messages:
        raise invalid_value("input", "expected at least one message or function call output.")
    return Conversation(tuple(decoder.system), tuple(decoder.messages),
                        tuple(decoder.untranslated))


def _decode_item(decoder: _Decoder, where: str, item: object) -> None:
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = optional_str(item, "type", f"{where}.type") or "message"
    if kind == "message":
        _message(decoder, where, item)
    elif kind == "function_call":
        decoder.assistant([_function_call(decoder, where, item)])
    elif kind == "function_call_output":
        decoder.result(_function_output(decoder, where, item))
    elif kind == "reasoning":
        _reasoning_item(decoder, where, item)
    elif kind == "compaction":
        summary = opened_summary(decoder.seal, item, where)
        decoder.user((TextPart(SUMMARY_HEADER + summary),))
    elif kind != "web_search_call":
        raise InvalidRequest(
            f"Input items of type '{kind}' are not supported by this gateway; supported "
            f"types are: {', '.join(repr(k) for k in _ITEM_TYPES)}.",
            violations={f"{where}.type": f"'{kind}' is not supported"})


def _message(decoder: _Decoder, where: str, item: dict[str, Any]) -> None:
    role = required_str(item, "role", f"{where}.role")
    if role not in _ROLES:
        raise unsupported_value(f"{where}.role", role, _ROLES)
    content = item.get("content")
    if content is None:
        raise missing(f"{where}.content")
    if role in ("system", "developer"):
        decoder.flush()
        decoder.system.extend(_texts(content, f"{where}.content", ("input_text",)))
    elif role == "assistant":
        texts = _texts(content, f"{where}.content", _ASSISTANT_PARTS)
        decoder.assistant([text for text in texts if text.text])
    else:
        decoder.user(_user_parts(decoder, f"{where}.content", content))


def _texts(content: object, where: str, kinds: tuple[str, ...]) -> tuple[TextPart, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array of content parts", content)
    return tuple(TextPart(_text_of(part, f"{where}[{index}]", kinds))
                 for index, part in enumerate(content))


def _text_of(part: object, where: str, kinds: tuple[str, ...]) -> str:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = required_str(part, "type", f"{where}.type")
    if kind not in kinds:
        raise unsupported_value(f"{where}.type", kind, kinds)
    return required_str(part, "refusal" if kind == "refusal" else "text", f"{where}.text")


def _user_parts(decoder: _Decoder, where: str, content: object) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array of content parts", content)
    if not content:
        raise invalid_value(where, "expected a non-empty array of content parts.")
    return tuple(_user_part(decoder, f"{where}[{index}]", part)
                 for index, part in enumerate(content))


def _user_part(decoder: _Decoder, where: str, part: object) -> Part:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = required_str(part, "type", f"{where}.type")
    if kind == "input_text":
        return TextPart(required_str(part, "text", f"{where}.text"))
    if kind == "input_image":
        return _image(decoder, where, part)
    if kind == "input_file":
        return _file(where, part)
    raise unsupported_value(f"{where}.type", kind, _USER_PARTS)


def _image(decoder: _Decoder, where: str, part: dict[str, Any]) -> Part:
    if part.get("file_id") is not None:
        raise _no_file_ids(f"{where}.file_id")
    url = required_str(part, "image_url", f"{where}.image_url")
    detail = optional_str(part, "detail", f"{where}.detail")
    if detail not in (None, "auto"):
        decoder.untranslated.append(Untranslated(
            f"{where}.detail", "image detail is an OpenAI setting", droppable=True))
    if url.startswith("data:"):
        blob = _data_url(f"{where}.image_url", url)
        if not blob.mime_type.startswith("image/"):
            raise invalid_value(f"{where}.image_url", f"{blob.mime_type} is not an image type.")
        return blob
    if url.startswith(("https://", "http://")):
        guessed, _ = mimetypes.guess_type(url.partition("?")[0])
        image_type = guessed if guessed and guessed.startswith("image/") else None
        return FileRefPart(url, image_type or _DEFAULT_IMAGE_TYPE)
    raise invalid_value(f"{where}.image_url", "expected an http(s) URL or a base64 data URL.")


def _file(where: str, part: dict[str, Any]) -> Part:
    if part.get("file_id") is not None:
        raise _no_file_ids(f"{where}.file_id")
    data = optional_str(part, "file_data", f"{where}.file_data")
    if data is not None:
        return _data_url(f"{where}.file_data", data)
    url = optional_str(part, "file_url", f"{where}.file_url")
    if url is None:
        raise missing(f"{where}.file_data")
    if not url.startswith(("https://", "http://")):
        raise invalid_value(f"{where}.file_url", "expected an http(s) URL.")
    guessed, _ = mimetypes.guess_type(url.partition("?")[0])
    return FileRefPart(url, guessed)


def _no_file_ids(where: str) -> InvalidRequest:
    return invalid_value(where, "file ids need OpenAI's files API, which this gateway does not "
                                "serve; send the content inline as a data URL.")


def _data_url(where: str, url: str) -> BlobPart:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise invalid_value(where, "expected a base64 data URL (data:<type>;base64,...).")
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(where, "the data is not valid base64.") from None
    return BlobPart(match["mime"].strip().lower(), data)


def _function_call(decoder: _Decoder, where: str, item: dict[str, Any]) -> ToolCallPart:
    call_id = required_str(item, "call_id", f"{where}.call_id")
    name = required_str(item, "name", f"{where}.name")
    namespace = optional_str(item, "namespace", f"{where}.namespace")
    if namespace:
        name = flat_name(namespace, name)
    arguments = parse_arguments(required_str(item, "arguments", f"{where}.arguments"))
    if arguments is None:
        raise invalid_value(f"{where}.arguments", "expected a JSON object encoded as a string.")
    decoder.calls[call_id] = name
    return ToolCallPart(name, arguments, call_id)


def _function_output(decoder: _Decoder, where: str, item: dict[str, Any]) -> ToolResultPart:
    call_id = required_str(item, "call_id", f"{where}.call_id")
    name = decoder.calls.get(call_id)
    if name is None:
        message = f"No tool call found for function call output with call_id {call_id}."
        raise InvalidRequest(message, violations={f"{where}.call_id": message})
    output = item.get("output")
    if isinstance(output, list):
        text = "".join(_text_of(part, f"{where}.output[{index}]", ("input_text",))
                       for index, part in enumerate(output))
    elif isinstance(output, str):
        text = output
    else:
        raise invalid_type(f"{where}.output", "a string or an array of content parts", output)
    return ToolResultPart(name, tool_result_response(text), call_id)


def _reasoning_item(decoder: _Decoder, where: str, item: dict[str, Any]) -> None:
    sealed = item.get("encrypted_content")
    if decoder.seal is None or sealed is None:
        decoder.assistant(_reasoning(decoder, where, item))
        return
    opened = open_state(decoder.seal, sealed, f"{where}.encrypted_content")
    decoder.assistant(list(opened.parts))
    decoder.carried = opened.next_signature


def _reasoning(decoder: _Decoder, where: str, item: dict[str, Any]) -> list[Part]:
    summary = item.get("summary")
    if summary is None:
        summary = []
    if not isinstance(summary, list):
        raise invalid_type(f"{where}.summary", "an array", summary)
    texts = [_text_of(part, f"{where}.summary[{index}]", ("summary_text",))
             for index, part in enumerate(summary)]
    if item.get("encrypted_content") is not None:
        decoder.untranslated.append(Untranslated(
            f"{where}.encrypted_content",
            "encrypted reasoning is opaque state that only its own model can read",
            droppable=True))
    text = "\n\n".join(texts)
    return [ReasoningPart(text)] if text else []
