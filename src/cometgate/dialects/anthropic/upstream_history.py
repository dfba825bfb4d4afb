"""The conversation (system instruction + messages) as Anthropic Messages content.

Anthropic's rules, and how the canonical conversation is bent to meet them:

- roles must alternate user/assistant: consecutive messages of one role are merged into one;
- a user message answering tool calls must hold its `tool_result` blocks first, before any
  text: user content is reordered (stably) to put them there;
- every `tool_result` names the `tool_use` id it answers, in the assistant turn just before.
  Gemini callers often omit ids (google-genai's automatic function calling sends
  functionResponse without one), so ids missing on calls are synthesised as "toolu_<turn>_<n>"
  (stable for a given request), and a result without an id is paired with the earliest
  unanswered call of the same name in the preceding assistant turn;
- a result's content follows `tool_results` (an Anthropic caller's own block comes back as it
  was sent; any other response goes as its JSON text);
- thinking blocks must come back unchanged: they arrive packed in a part's thought signature
  (see `envelope`) and are unpacked in front of that part's own block, which keeps their order
  (or first in the turn when it holds no thinking yet; a block already there is not repeated);
- blocks may not be empty: empty text is left out, and a message left with nothing is skipped.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

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
from cometgate.dialects.anthropic.envelope import unpack
from cometgate.dialects.anthropic.image_types import IMAGE_TYPES
from cometgate.dialects.anthropic.tool_results import tool_result_fields
from cometgate.dialects.tool_calls import CallLedger
from cometgate.dialects.upstream_answers import describe_part, unsupported_part
from cometgate.errors import InvalidRequest

Block = dict[str, Any]
THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})


@dataclass(frozen=True, slots=True)
class History:
    system: list[Block]
    messages: list[dict[str, Any]]
    dropped: tuple[str, ...]


@dataclass(slots=True)
class _Encoder:
    messages: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    ledger: CallLedger = field(default_factory=lambda: CallLedger("toolu"))

    def append(self, role: str, content: list[Block]) -> None:
        if not content:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(content)
        else:
            self.messages.append({"role": role, "content": content})


def encode_history(request: GenerateRequest) -> History:
    encoder = _Encoder()
    system = _system(encoder, request.system)
    cached = request.prompt_cache.messages if request.prompt_cache is not None else 0
    for turn, message in enumerate(request.messages):
        if message.role == "assistant":
            _add_assistant(encoder, turn, message)
        else:
            _add_user(encoder, turn, message)
        if turn == cached - 1 and encoder.messages:
            _mark_cached(encoder.messages[-1]["content"])
    if request.prompt_cache is not None:
        _mark_cached(system)  # tools come before the system prompt: the mark covers them too
    for encoded in encoder.messages:
        if encoded["role"] == "user":
            encoded["content"] = _results_first(encoded["content"])
    return History(system, encoder.messages, tuple(encoder.dropped))


def _mark_cached(blocks: list[Block]) -> None:
    """A cache breakpoint on the last block of a cached prefix (Anthropic's prompt caching
    keeps everything up to it); thinking blocks cannot carry one."""
    for block in reversed(blocks):
        if block.get("type") not in ("thinking", "redacted_thinking"):
            block["cache_control"] = {"type": "ephemeral"}
            return


def _system(encoder: _Encoder, parts: tuple[Part, ...]) -> list[Block]:
    blocks: list[Block] = []
    for index, part in enumerate(parts):
        where = f"system[{index}]"
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                f"the system instruction can only hold text, not {describe_part(part)}",
                violations={where: "must be text"},
            )
        if part.signature is not None:
            encoder.dropped.append(f"{where}.signature: a system instruction has no thoughts")
        if part.text:
            blocks.append({"type": "text", "text": part.text})
    return blocks


def _add_assistant(encoder: _Encoder, turn: int, message: Message) -> None:
    if not encoder.messages or encoder.messages[-1]["role"] != "assistant":
        encoder.ledger.new_turn()  # a new assistant turn: only its calls can be answered next
    carried = any(unpack(getattr(p, "signature", None)) is not None for p in message.parts)
    content: list[Block] = []
    for index, part in enumerate(message.parts):
        where = f"messages[{turn}].parts[{index}]"
        if isinstance(part, ReasoningPart):
            content.extend(_reasoning(encoder, where, part, carried))
            continue
        _place_carried(content, _thinking_carried(encoder, where, part))
        if isinstance(part, TextPart):
            if part.text:
                content.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            content.append(_tool_use(encoder, turn, part))
        else:
            raise unsupported_part(where, part, "a model turn")
    encoder.append("assistant", content)


def _reasoning(encoder: _Encoder, where: str, part: ReasoningPart, carried: bool) -> list[Block]:
    blocks = unpack(part.signature)
    if blocks is not None:
        return [dict(block) for block in blocks]
    # Anthropic takes back only signed thinking. When the turn carries its thinking in an
    # envelope elsewhere, unsigned reasoning is a streamed copy of it and nothing is lost.
    if not carried and (part.text or part.signature is not None):
        encoder.dropped.append(
            f"{where}: reasoning without an Anthropic signature cannot be sent back")
    return []


def _thinking_carried(encoder: _Encoder, where: str, part: Part) -> list[Block]:
    signature = getattr(part, "signature", None)
    if signature is None:
        return []
    blocks = unpack(signature)
    if blocks is None:
        encoder.dropped.append(
            f"{where}.signature: not a thought signature from an Anthropic model")
        return []
    return [dict(block) for block in blocks]


def _place_carried(content: list[Block], blocks: list[Block]) -> None:
    """Puts thinking carried on a part's signature in front of that part. Blocks the turn
    already holds are skipped: a Gemini answer copies its thinking onto the function call
    (`gemini.caller_thinking`), and a caller may send back the thought parts and the call.
    When the turn holds no thinking yet they go first, because Anthropic wants a turn's
    thinking before its text, and a caller that dropped the thought parts still has the text
    that followed them."""
    fresh = [block for block in blocks if block not in content]
    if any(block["type"] in THINKING_TYPES for block in content):
        content.extend(fresh)
    else:
        content[0:0] = fresh


def _tool_use(encoder: _Encoder, turn: int, part: ToolCallPart) -> Block:
    call = encoder.ledger.call(part, turn)
    return {"type": "tool_use", "id": call.id, "name": part.name,
            "input": dict(part.arguments)}


def _add_user(encoder: _Encoder, turn: int, message: Message) -> None:
    content: list[Block] = []
    for index, part in enumerate(message.parts):
        where = f"messages[{turn}].parts[{index}]"
        signature = getattr(part, "signature", None)
        if signature is not None:
            encoder.dropped.append(f"{where}.signature: only model turns carry thoughts")
        if isinstance(part, ToolResultPart):
            content.append(_tool_result(encoder.ledger, where, part))
        elif isinstance(part, ReasoningPart):
            encoder.dropped.append(f"{where}: reasoning in a user turn has no Anthropic form")
        elif isinstance(part, ToolCallPart):
            raise InvalidRequest(
                f"{where}: a function call can only appear in a model turn",
                violations={where: "function call outside a model turn"},
            )
        elif not isinstance(part, TextPart):
            content.append(_media(where, part))
        elif part.text:
            content.append({"type": "text", "text": part.text})
    encoder.append("user", content)


def _media(where: str, part: Part) -> Block:
    if isinstance(part, BlobPart):
        if part.mime_type in IMAGE_TYPES:
            return {"type": "image", "source": _base64_source(part)}
        if part.mime_type == "application/pdf":
            return {"type": "document", "source": _base64_source(part)}
        if part.mime_type == "text/plain":
            text = part.data.decode("utf-8", "replace")
            return {"type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": text}}
    if isinstance(part, FileRefPart) and part.uri.startswith(("http://", "https://")):
        if part.mime_type in IMAGE_TYPES:
            return {"type": "image", "source": {"type": "url", "url": part.uri}}
        if part.mime_type == "application/pdf":
            return {"type": "document", "source": {"type": "url", "url": part.uri}}
    raise unsupported_part(where, part, "this model's input")


def _base64_source(part: BlobPart) -> Block:
    return {"type": "base64", "media_type": part.mime_type,
            "data": base64.b64encode(part.data).decode("ascii")}


def _tool_result(ledger: CallLedger, where: str, result: ToolResultPart) -> Block:
    call = ledger.answer(result, where)
    return {"type": "tool_result", "tool_use_id": call.id,
            **tool_result_fields(result.response)}


def _results_first(content: list[Block]) -> list[Block]:
    results = [block for block in content if block["type"] == "tool_result"]
    if not results:
        return content
    return results + [block for block in content if block["type"] != "tool_result"]


