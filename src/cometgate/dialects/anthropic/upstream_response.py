"""Anthropic Messages responses → canonical values.

Content blocks become parts in order: `text` → TextPart, `tool_use` → ToolCallPart (or, under
JSON/enum output, the `respond` call → the response text), `thinking`/`redacted_thinking` →
see below. The web search server tool's blocks and the text's citations of its results become
the candidate's grounding (`web_search`); the code execution tool's become CodePart and
CodeResultPart (`code_execution`); other server tools' blocks are skipped.

Thinking is returned as ReasoningPart only when the caller asked for thoughts, but its blocks
are always carried, packed into a thought signature (`envelope`), because Anthropic refuses a
tool-use continuation without them:
- thoughts asked for: each block becomes a ReasoningPart whose signature holds that block;
- thoughts hidden: the blocks ride on the signature of the next part (the text or function
  call that follows), or, when nothing follows, on a final empty TextPart.

Usage: Anthropic counts cache reads and writes apart from `input_tokens`; the prompt is their
sum, cached tokens are the reads. `output_tokens` includes thinking, which Anthropic does not
break out, so `thoughts_tokens` stays 0. `server_tool_use.web_search_requests` counts the
searches, which Anthropic bills apart from tokens.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cometgate.canonical import (
    Candidate,
    FinishReason,
    GenerateRequest,
    GenerateResponse,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from cometgate.dialects.anthropic.code_execution import RESULT_BLOCK, code_part, result_part
from cometgate.dialects.anthropic.envelope import (
    ThinkingBlock,
    pack,
    redacted_block,
    thinking_block,
)
from cometgate.dialects.anthropic.upstream_structured import RESPOND_TOOL, output_text
from cometgate.dialects.anthropic.web_search import Searches
from cometgate.dialects.upstream_answers import answer_object, new_response_id, unreadable

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "tool_use": FinishReason.STOP,
    "max_tokens": FinishReason.MAX_TOKENS,
    "model_context_window_exceeded": FinishReason.MAX_TOKENS,
    "refusal": FinishReason.SAFETY,
    "pause_turn": FinishReason.OTHER,  # a server tool paused the turn; nothing to map it to
}




def finish_reason(value: object) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(str(value), FinishReason.OTHER)




@dataclass(slots=True)
class TokenCounts:
    """Anthropic's usage fields; a stream reports them piecemeal, the latest value wins."""

    input: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    output: int = 0
    searches: int = 0  # the web search server tool's searches, billed each

    def update(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        server = usage.get("server_tool_use")
        searches = server.get("web_search_requests") if isinstance(server, dict) else None
        if isinstance(searches, int) and not isinstance(searches, bool):
            self.searches = searches
        for name, key in (("input", "input_tokens"), ("output", "output_tokens"),
                          ("cache_creation", "cache_creation_input_tokens"),
                          ("cache_read", "cache_read_input_tokens")):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, value)

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.input + self.cache_creation + self.cache_read,
                     output_tokens=self.output, cached_tokens=self.cache_read,
                     searches=self.searches)


@dataclass(slots=True)
class Assembler:
    """Finished content blocks → parts, carrying thinking blocks as described above."""

    request: GenerateRequest
    pending: list[ThinkingBlock] = field(default_factory=list)
    malformed: bool = False  # a tool call (or the JSON answer) could not be read

    @property
    def shows_thoughts(self) -> bool:
        thinking = self.request.thinking
        return thinking is not None and thinking.include_thoughts is True

    @property
    def json_mode(self) -> bool:
        return self.request.output is not None

    def thinking(self, block: ThinkingBlock, text: str) -> Part | None:
        """`text` is what the ReasoningPart shows: the thinking, or "" when a stream has
        already sent it in increments."""
        if self.shows_thoughts:
            return ReasoningPart(text, pack([block]))
        self.pending.append(block)
        return None

    def text(self, text: str) -> Part | None:
        # Under JSON output the answer is the forced call; stray text would corrupt it.
        if not text or self.json_mode:
            return None
        return TextPart(text, self._carried())

    def tool_use(self, call_id: object, name: object, tool_input: object) -> Part | None:
        if not isinstance(name, str) or not name or not isinstance(tool_input, dict):
            self.malformed = True
            return None
        output = self.request.output
        if output is not None and name == RESPOND_TOOL:
            answer = output_text(output, tool_input)
            if answer is None:
                self.malformed = True
                return None
            return TextPart(answer, self._carried())
        ident = call_id if isinstance(call_id, str) and call_id else None
        return ToolCallPart(name, tool_input, ident, self._carried())

    def finish(self) -> Part | None:
        """A last part for thinking that nothing followed, so that it is not lost."""
        signature = self._carried()
        return TextPart("", signature) if signature is not None else None

    def _carried(self) -> bytes | None:
        if not self.pending:
            return None
        signature, self.pending = pack(self.pending), []
        return signature


def decode_response(body: bytes, request: GenerateRequest, model_version: str) -> GenerateResponse:
    document = answer_object(body)
    content = document.get("content")
    if not isinstance(content, list):
        raise unreadable("the upstream message has no content")
    assembler = Assembler(request)
    searches = Searches()
    parts = [part for block in content if isinstance(block, dict)
             if (part := _part(assembler, block, searches)) is not None]
    last = assembler.finish()
    if last is not None:
        parts.append(last)
    reason = finish_reason(document.get("stop_reason"))
    if assembler.malformed:
        reason = FinishReason.MALFORMED_TOOL_CALL
    counts = TokenCounts()
    counts.update(document.get("usage"))
    return GenerateResponse(
        model_version=model_version,
        candidates=(Candidate(tuple(parts), reason, 0, grounding=searches.grounding()),),
        usage=counts.usage(),
        response_id=new_response_id(),
        created=time.time(),  # Anthropic messages carry no creation time
    )


def _part(assembler: Assembler, block: Mapping[str, Any], searches: Searches) -> Part | None:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            return None
        part = assembler.text(text)
        if isinstance(part, TextPart):
            searches.text(part.text, block.get("citations"))
        return part
    if kind == "server_tool_use":
        searches.server_tool_use(block.get("name"), block.get("input"))
        return code_part(block.get("name"), block.get("input"))
    if kind == RESULT_BLOCK:
        return result_part(block.get("content"))
    if kind == "tool_use":
        return assembler.tool_use(block.get("id"), block.get("name"), block.get("input"))
    if kind == "thinking":
        thinking, signature = block.get("thinking"), block.get("signature")
        if not isinstance(thinking, str) or not isinstance(signature, str):
            raise unreadable("a thinking block has no text or signature")
        return assembler.thinking(thinking_block(thinking, signature), thinking)
    if kind == "redacted_thinking":
        data = block.get("data")
        if not isinstance(data, str):
            raise unreadable("a redacted thinking block has no data")
        return assembler.thinking(redacted_block(data), "")
    return None
