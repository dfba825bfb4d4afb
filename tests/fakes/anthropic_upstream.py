"""An in-process Anthropic Messages server for tests.

It speaks the real wire format (a `message` object; SSE with `event:` lines —
message_start, content_block_start/delta/stop, ping, message_delta, message_stop, error; the
`{"type":"error","error":{type,message},"request_id"}` envelope; `/v1/messages/count_tokens`
answering `{"input_tokens": N}`, one token per word of what it received) and answers from a
script the test sets, recording every request: its body (parsed, and as the bytes that
arrived), its headers and its query string; and, per stream, the events it wrote.

Like the real API it refuses, with a 400 invalid_request_error, the requests Anthropic
refuses and a translation could get wrong: a missing `max_tokens` or `x-api-key` (and, for a
count, a missing `anthropic-version` or a generation setting in its body), roles that
do not alternate, tool results that do not come first or answer no `tool_use` of the turn
before, and — when thinking is on — a tool-use continuation whose assistant turn does not
start with the thinking block this server signed.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_batches import AnthropicBatches
from tests.fakes.gemini_upstream import FIREHOSE_SECONDS


@dataclass
class Reply:
    """What the fake answers next. `text` is split into `chunks` pieces when streaming."""

    text: str | None = "Hello from the fake upstream."
    tool_calls: list[dict[str, Any]] | None = None  # [{"name":…, "input": {...}}]
    thinking: str | None = None  # a thinking block first, signed by this server
    redacted: str | None = None  # a redacted_thinking block's data, after the thinking
    stop_reason: str = "end_turn"
    input_tokens: int = 7
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    chunks: int = 3
    status: int = 200
    error_type: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)
    fail_mid_stream: bool = False  # one text delta, then an overloaded_error event
    fail_at_start: bool = False  # answer 200, then an error event in place of message_start
    truncate: bool = False  # stop after the content, without message_delta/message_stop
    endless: bool = False  # text deltas until the client goes away
    firehose: bool = False  # text deltas as fast as the client reads, 20 s at most
    raw_body: bytes | None = None  # a 200 answer with exactly these bytes (stream or not)
    # With the web search server tool offered, the model searches for `search_query` first,
    # and each sentence of `text` cites the page found (unless `searches` is False).
    searches: bool = True
    search_query: str = "fake search query"
    # With the code execution server tool offered, the model runs `code` first (a
    # server_tool_use block, then its code_execution_tool_result), then writes `text`. The
    # result is `code_stdout`, `code_stderr` and `code_return`, or the tool's error
    # `code_error` ("execution_time_exceeded", "unavailable", …) when set.
    code: str | None = None
    code_stdout: str = ""
    code_stderr: str = ""
    code_return: int = 0
    code_error: str | None = None


def signature_for(thinking: str) -> str:
    """What this server signs a thinking text with; it checks it when the block returns."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


class RequestRefused(Exception):
    pass


class FakeAnthropicUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.searched: list[dict[str, Any]] = []  # each web search tool received, in order
        self.bodies: list[bytes] = []  # the request bodies exactly as they arrived
        self.headers: list[dict[str, str]] = []
        self.queries: list[str] = []  # of every request, messages and counts, as received
        self.sent: list[list[bytes]] = []  # per stream, the events written, in order
        self.replies: list[Reply] = []
        self.default = Reply()
        self.cached_prefixes: set[bytes] = set()  # prompt-cache prefixes written so far
        self._ids = itertools.count(1)
        # The Message Batches API (batches.log proves what it was asked); answers echo.
        self.batches = AnthropicBatches(self._batch_answer, _refusal)
        self.app = Starlette(routes=[
            *self.batches.routes(),
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
        ])

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    def _batch_answer(self, params: dict[str, Any]) -> dict[str, Any]:
        """A batch request's Message: "You said: " and its last text."""
        said = "".join(_texts(params["messages"][-1]["content"]))
        return _message(next(self._ids), params, replace(self.default, text=f"You said: {said}"))

    async def _messages(self, request: Request) -> Response:
        raw = await request.body()
        body = orjson.loads(raw)
        self.requests.append(body)
        self.bodies.append(raw)
        self.headers.append(dict(request.headers))
        self.queries.append(request.url.query)
        if not request.headers.get("x-api-key"):
            return _error(401, "authentication_error", "x-api-key header is required")
        try:
            _validate(body)
        except RequestRefused as refused:
            return _error(400, "invalid_request_error", str(refused))
        refused = _code_tool_refusal(body, request.headers.get("anthropic-beta", ""))
        if refused is not None:
            return _error(400, "invalid_request_error", refused)
        reply = self._prompt_cached(body, self.next_reply())
        self.searched.extend(_search_tools(body))
        if reply.status != 200:
            return _error(reply.status, reply.error_type, f"fake failure {reply.status}",
                          reply.headers)
        if reply.raw_body is not None:
            media_type = "text/event-stream" if body.get("stream") else "application/json"
            return Response(reply.raw_body, media_type=media_type)
        number = next(self._ids)
        if body.get("stream"):
            return StreamingResponse(self._written(self._events(number, body, reply)),
                                     media_type="text/event-stream")
        return Response(orjson.dumps(_message(number, body, reply)),
                        media_type="application/json")

    def _prompt_cached(self, body: dict[str, Any], reply: Reply) -> Reply:
        """Prompt caching as Anthropic reports it: the prefix up to the last cache_control
        breakpoint is written to the cache the first time (cache_creation_input_tokens) and
        read from it when the same prefix comes again (cache_read_input_tokens)."""
        prefix = _cached_prefix(body)
        if prefix is None or reply.cache_read_tokens or reply.cache_creation_tokens:
            return reply
        key, words = prefix
        if key in self.cached_prefixes:
            return replace(reply, cache_read_tokens=words)
        self.cached_prefixes.add(key)
        return replace(reply, cache_creation_tokens=words)

    async def _count_tokens(self, request: Request) -> Response:
        """`{"input_tokens": N}`, one token per word of every text the model would read."""
        raw = await request.body()
        body = orjson.loads(raw)
        self.requests.append(body)
        self.bodies.append(raw)
        self.headers.append(dict(request.headers))
        self.queries.append(request.url.query)
        if not request.headers.get("x-api-key"):
            return _error(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            _validate_count(body)
        except RequestRefused as refused:
            return _error(400, "invalid_request_error", str(refused))
        reply = self.next_reply()
        if reply.status != 200:
            return _error(reply.status, reply.error_type, f"fake failure {reply.status}",
                          reply.headers)
        return Response(orjson.dumps({"input_tokens": _words(body)}),
                        media_type="application/json")

    async def _written(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        sent: list[bytes] = []
        self.sent.append(sent)
        async for event in events:
            sent.append(event)
            yield event

    async def _events(self, number: int, body: dict[str, Any], reply: Reply
                      ) -> AsyncIterator[bytes]:
        if reply.fail_at_start:
            yield _sse("error", {"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})
            return
        start = _message(number, body, reply)
        start.update(content=[], stop_reason=None)
        start["usage"] = {**start["usage"], "output_tokens": 1}
        yield _sse("message_start", {"type": "message_start", "message": start})
        yield _sse("ping", {"type": "ping"})
        if reply.endless or reply.firehose:
            yield _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}})
            deadline = asyncio.get_running_loop().time() + FIREHOSE_SECONDS
            while reply.endless or asyncio.get_running_loop().time() < deadline:
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                   "delta": {"type": "text_delta", "text": "x"}})
                await asyncio.sleep(0 if reply.firehose else 0.005)
            return
        for index, block in enumerate(_content(number, reply, body)):
            async for event in _block_events(index, block, reply):
                yield event
            if reply.fail_mid_stream:
                return
        if reply.truncate:
            return
        yield _sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": reply.stop_reason,
                                               "stop_sequence": None},
                                     "usage": {"output_tokens": reply.output_tokens}})
        yield _sse("message_stop", {"type": "message_stop"})


async def _block_events(index: int, block: dict[str, Any], reply: Reply) -> AsyncIterator[bytes]:
    def delta(payload: dict[str, Any]) -> bytes:
        return _sse("content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": payload})

    kind = block["type"]
    empty = {"text": {"type": "text", "text": ""},
             "thinking": {"type": "thinking", "thinking": "", "signature": ""},
             "tool_use": {**block, "input": {}},
             "server_tool_use": {**block, "input": {}},
             "web_search_tool_result": block,
             "code_execution_tool_result": block,
             "redacted_thinking": block}[kind]
    if "citations" in block:  # a text block that cites opens with an empty list
        empty = {**empty, "citations": []}
    yield _sse("content_block_start",
               {"type": "content_block_start", "index": index, "content_block": empty})
    if kind == "text":
        for citation in block.get("citations", ()):
            yield delta({"type": "citations_delta", "citation": citation})
        for piece in _pieces(block["text"], reply.chunks):
            yield delta({"type": "text_delta", "text": piece})
            if reply.fail_mid_stream:
                yield _sse("error", {"type": "error", "error": {
                    "type": "overloaded_error", "message": "Overloaded"}})
                return
    elif kind == "thinking":
        for piece in _pieces(block["thinking"], 2):
            yield delta({"type": "thinking_delta", "thinking": piece})
        yield delta({"type": "signature_delta", "signature": block["signature"]})
    elif kind in ("tool_use", "server_tool_use"):
        arguments = orjson.dumps(block["input"]).decode()
        for piece in ["", *_pieces(arguments, 2)]:  # Anthropic opens with an empty fragment
            yield delta({"type": "input_json_delta", "partial_json": piece})
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(count, 1)))
    return [text[start:start + size] for start in range(0, len(text), size)]


def _message(number: int, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": f"msg_fake{number:04d}", "type": "message", "role": "assistant",
        "model": body.get("model"), "content": _content(number, reply, body),
        "stop_reason": reply.stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens,
                  "cache_creation_input_tokens": reply.cache_creation_tokens,
                  "cache_read_input_tokens": reply.cache_read_tokens,
                  "output_tokens": reply.output_tokens,
                  **({"server_tool_use": {"web_search_requests": 1}}
                     if _searching(reply, body) else {})},
    }


SEARCH_PAGE = "https://example.com/fake-page"
SEARCH_TITLE = "A fake page"


def _search_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [tool for tool in body.get("tools") or []
            if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search_")]


def _searching(reply: Reply, body: dict[str, Any]) -> bool:
    return reply.searches and bool(_search_tools(body))


def _search_blocks(number: int, reply: Reply) -> list[dict[str, Any]]:
    """A search as Anthropic's web search tool reports it: the server_tool_use block, its
    web_search_tool_result, then the text, one block per sentence citing the page."""
    call_id = f"srvtoolu_fake{number}"
    blocks: list[dict[str, Any]] = [
        {"type": "server_tool_use", "id": call_id, "name": "web_search",
         "input": {"query": reply.search_query}},
        {"type": "web_search_tool_result", "tool_use_id": call_id, "content": [
            {"type": "web_search_result", "url": SEARCH_PAGE, "title": SEARCH_TITLE,
             "encrypted_content": "RmFrZSBwYWdl", "page_age": "April 30, 2025"}]},
    ]
    for sentence in re.findall(r"[^.]+\.?\s*", reply.text or ""):
        blocks.append({"type": "text", "text": sentence, "citations": [
            {"type": "web_search_result_location", "url": SEARCH_PAGE, "title": SEARCH_TITLE,
             "encrypted_index": "RmFrZQ==", "cited_text": sentence.strip()}]})
    return blocks


CODE_TOOL = "code_execution_20250522"
CODE_BETA = "code-execution-2025-05-22"


def _code_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [tool for tool in body.get("tools") or []
            if isinstance(tool, dict) and tool.get("type") == CODE_TOOL]


def _code_tool_refusal(body: dict[str, Any], beta: str) -> str | None:
    """The 400 Anthropic gives a beta tool sent without its beta header, or misnamed."""
    for i, tool in enumerate(_code_tools(body)):
        if CODE_BETA not in [name.strip() for name in beta.split(",")]:
            return (f"tools.{i}: Input tag '{CODE_TOOL}' found using 'type' does not match any "
                    "of the expected tags (the beta header code-execution-2025-05-22 is "
                    "required)")
        if tool.get("name") != "code_execution":
            return f"tools.{i}.name: Input should be 'code_execution'"
    return None


def _running_code(reply: Reply, body: dict[str, Any]) -> bool:
    return reply.code is not None and bool(_code_tools(body))


def _code_blocks(number: int, reply: Reply) -> list[dict[str, Any]]:
    """A run as Anthropic's code execution tool reports it: the server_tool_use block holding
    the code, then its code_execution_tool_result."""
    call_id = f"srvtoolu_code{number}"
    result: dict[str, Any] = (
        {"type": "code_execution_tool_result_error", "error_code": reply.code_error}
        if reply.code_error is not None else
        {"type": "code_execution_result", "stdout": reply.code_stdout,
         "stderr": reply.code_stderr, "return_code": reply.code_return, "content": []})
    return [
        {"type": "server_tool_use", "id": call_id, "name": "code_execution",
         "input": {"code": reply.code}},
        {"type": "code_execution_tool_result", "tool_use_id": call_id, "content": result},
    ]


def _content(number: int, reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append({"type": "thinking", "thinking": reply.thinking,
                        "signature": signature_for(reply.thinking)})
    if reply.redacted is not None:
        content.append({"type": "redacted_thinking", "data": reply.redacted})
    if _running_code(reply, body):
        content.extend(_code_blocks(number, reply))
    if _searching(reply, body):
        content.extend(_search_blocks(number, reply))
    elif reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls or []):
        content.append({"type": "tool_use", "id": f"toolu_fake{number}_{i}",
                        "name": call["name"], "input": call["input"]})
    return content


def _refusal(body: dict[str, Any]) -> str | None:
    try:
        _validate(body)
    except RequestRefused as refused:
        return str(refused)
    return None


def _validate(body: dict[str, Any]) -> None:
    if not isinstance(body.get("max_tokens"), int):
        raise RequestRefused("max_tokens: Field required")
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024 or budget >= body["max_tokens"]:
            raise RequestRefused("thinking.budget_tokens: must be ≥ 1024 and < max_tokens")
    _validate_messages(body)


# What count_tokens takes (the fields the anthropic SDK's count_tokens can send); the
# generation settings are refused there.
_COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking",
                           "context_management", "mcp_servers", "output_config",
                           "output_format", "cache_control", "speed", "compaction",
                           "billing_policy"})


def _validate_count(body: dict[str, Any]) -> None:
    for name in body:
        if name not in _COUNT_FIELDS:
            raise RequestRefused(f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str):
        raise RequestRefused("model: Field required")
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled" and thinking.get("budget_tokens", 0) < 1024:
        raise RequestRefused("thinking.budget_tokens: must be ≥ 1024")
    _validate_messages(body)


def _words(body: dict[str, Any]) -> int:
    """Words of the system prompt, of every text, tool result and tool_use input value in
    the messages, and of each tool's name and description."""
    texts = _texts(body.get("system"))
    for message in body.get("messages") or []:
        texts += _texts(message.get("content"))
    for tool in body.get("tools") or []:
        texts += [tool.get("name", ""), tool.get("description", "")]
    return sum(len(text.split()) for text in texts)


def _cached_prefix(body: dict[str, Any]) -> tuple[bytes, int] | None:
    """The prompt up to its last cache_control breakpoint, in Anthropic's cache order (tools,
    system, messages) without the marks, and its words; None without a breakpoint."""
    system = body.get("system")
    items: list[tuple[str, dict[str, Any]]] = [("tool", tool) for tool in body.get("tools") or []]
    if isinstance(system, list):
        items += [("system", block) for block in system]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, list):
            items += [(message["role"], block) for block in content]
    marked = [i for i, (_, block) in enumerate(items) if "cache_control" in block]
    if not marked:
        return None
    prefix = [(role, {k: v for k, v in block.items() if k != "cache_control"})
              for role, block in items[:marked[-1] + 1]]
    words = sum(len(text.split()) for _, block in prefix for text in _texts([block]))
    words += sum(len(str(block.get("description", "")).split()) + 1
                 for role, block in prefix if role == "tool")
    return orjson.dumps(prefix), words


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_result":
            texts += _texts(block.get("content"))
        elif kind == "tool_use":
            texts += [str(value) for value in (block.get("input") or {}).values()]
    return texts


def _validate_messages(body: dict[str, Any]) -> None:
    thinking = body.get("thinking") or {}
    messages = body.get("messages") or []
    previous_role = None
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):  # Anthropic's shorthand for one text block
            content = [{"type": "text", "text": content}] if content else []
        if role == previous_role:
            raise RequestRefused(f"messages: roles must alternate, found two {role!r} in a row")
        if not content:
            raise RequestRefused(f"messages.{i}: all messages must have non-empty content")
        if isinstance(content, str):  # shorthand for one text block, as the API accepts
            content = [{"type": "text", "text": content}]
        if role == "user":
            _check_results(i, content, open_calls)
            open_calls = set()
        else:
            open_calls = {b["id"] for b in content if b.get("type") == "tool_use"}
            _check_thinking(i, content, thinking.get("type") == "enabled",
                            i == len(messages) - 2 and bool(open_calls))
        previous_role = role


def _check_results(i: int, content: list[dict[str, Any]], open_calls: set[str]) -> None:
    kinds = [block.get("type") for block in content]
    results = [block for block in content if block.get("type") == "tool_result"]
    if "tool_result" in kinds[len(results):]:
        raise RequestRefused(f"messages.{i}: tool_result blocks must come first")
    answered = {block.get("tool_use_id") for block in results}
    if not answered <= open_calls:
        raise RequestRefused(f"messages.{i}: unexpected tool_use_id found in tool_result blocks")
    if open_calls - answered:
        raise RequestRefused(f"messages.{i}: tool_use ids were found without tool_result blocks")


def _check_thinking(i: int, content: list[dict[str, Any]], thinking_on: bool,
                    continued: bool) -> None:
    for block in content:
        if block.get("type") == "thinking" and block.get("signature") != signature_for(
                block.get("thinking", "")):
            raise RequestRefused(f"messages.{i}: Invalid `signature` in `thinking` block")
    if thinking_on and continued and content[0].get("type") not in (
            "thinking", "redacted_thinking"):
        raise RequestRefused(f"messages.{i}: Expected `thinking` or `redacted_thinking`, but "
                             "found `tool_use`. When `thinking` is enabled, a final "
                             "`assistant` message must start with a thinking block")


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _error(status: int, kind: str, message: str,
           headers: dict[str, str] | None = None) -> Response:
    envelope = {"type": "error", "error": {"type": kind, "message": message},
                "request_id": "req_fake0001"}
    return Response(orjson.dumps(envelope), status_code=status, media_type="application/json",
                    headers={"request-id": "req_fake0001", **(headers or {})})
