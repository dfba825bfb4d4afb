"""An in-process OpenAI Chat Completions server for API tests (and its Responses API, for
upstreams configured with `responses_api: true`: see `openai_responses`).

It speaks the real wire format (chat.completion, chat.completion.chunk SSE ending in
`data: [DONE]`, the `{"error":{message,type,param,code}}` envelope; vLLM's `POST /tokenize`,
counting one token per word of what it received) and answers from a script the test sets,
recording every request body it received.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import openai_images
from tests.fakes.gemini_upstream import FIREHOSE_SECONDS
from tests.fakes.openai_batches import OpenAIBatches
from tests.fakes.openai_responses import response_body, response_events


@dataclass
class Reply:
    """What the fake answers next. `text` is split into `chunks` pieces when streaming.

    `logprobs` are (token, logprob) pairs that spell `text`; they are sent only to a request
    with `logprobs: true`, as OpenAI does, and then a stream sends one token per chunk. Each
    token's `top_logprobs` are the token itself and made-up alternatives ("alt1", …, each one
    less likely), as many as the request's `top_logprobs`."""

    text: str | None = "Hello from the fake upstream."
    tool_calls: list[dict[str, Any]] | None = None  # [{"name":…, "arguments": {...}}]
    finish_reason: str = "stop"
    prompt_tokens: int = 7
    completion_tokens: int = 5
    chunks: int = 3
    status: int = 200
    error_type: str = "invalid_request_error"
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fail_mid_stream: bool = False  # send one chunk, then an error frame
    fail_at_start: bool = False  # answer 200, then an error frame in place of the first chunk
    truncate: bool = False  # stop after the content, without finish_reason or [DONE]
    logprobs: list[tuple[str, float]] | None = None
    endless: bool = False  # content chunks (with no usage) until the client goes away
    firehose: bool = False  # content chunks as fast as the client reads, 20 s at most
    raw_body: bytes | None = None  # a 200 answer with exactly these bytes (stream or not)
    hold: asyncio.Event | None = None  # a slow upstream: a chat answer waits until it is set
    # Asked with `web_search_options`, each sentence of `text` cites the page found, as a
    # `url_citation` annotation (streamed: in one delta after the content).
    searches: bool = True
    echo: bool = False  # a chat answer says "You said: " and the last message's text


def _words(body: dict[str, Any]) -> int:
    """One token per word of every message's text and each tool's name and description: a
    count that proves what arrived."""
    texts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [part.get("text", "") for part in content or []]
    for tool in body.get("tools") or []:
        function = tool.get("function") or {}
        texts += [function.get("name", ""), function.get("description", "")]
    return sum(len(text.split()) for text in texts)


def _last_text(body: dict[str, Any]) -> str:
    content = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [])


class FakeOpenAIUpstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.searched: list[dict[str, Any]] = []  # each web_search_options received, in order
        self.paths: list[str] = []  # each request's path, in the order of `requests`
        self.replies: list[Reply] = []
        self.image_calls: list[openai_images.ImageCall] = []
        self.default = Reply()
        # prompt_cache_key → the messages of the last request that named it
        self.prompt_caches: dict[str, list[Any]] = {}
        self._cached_tokens: dict[str, int] = {}  # per answer id: what it served from cache
        self._ids = itertools.count(1)
        # The Batch API (batches.log proves what it was asked); answers echo each request.
        self.batches = OpenAIBatches(
            lambda body: self._completion(f"chatcmpl-fake{next(self._ids)}", body,
                                          replace(self.default, echo=True)))
        self.app = Starlette(routes=[
            *self.batches.routes(),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/tokenize", self._tokenize, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/images/generations", self._images, methods=["POST"]),
            Route("/v1/images/edits", self._images, methods=["POST"]),
        ])

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    async def _tokenize(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.paths.append(request.url.path)
        count = _words(body)
        return Response(orjson.dumps({"count": count, "max_model_len": 8192,
                                      "tokens": list(range(count)), "token_strs": None}),
                        media_type="application/json")

    async def _responses(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.paths.append(request.url.path)
        reply = self.next_reply()
        if reply.status != 200:
            return self._error(reply)
        ident = f"resp_fake{next(self._ids)}"
        if body.get("stream"):
            return StreamingResponse(response_events(ident, body, reply),
                                     media_type="text/event-stream")
        return Response(orjson.dumps(response_body(ident, body, reply)),
                        media_type="application/json")

    async def _images(self, request: Request) -> Response:
        call = await openai_images.read_call(request)
        self.image_calls.append(call)
        self.paths.append(request.url.path)
        reply = self.next_reply()
        if reply.status != 200:
            return self._error(reply)
        refused = openai_images.refusal(call)
        if refused is not None:
            message, param = refused
            error = {"error": {"message": message, "type": "invalid_request_error",
                               "param": param, "code": None}}
            return Response(orjson.dumps(error), status_code=400, media_type="application/json")
        return Response(orjson.dumps(openai_images.answer(call)), media_type="application/json")

    def _error(self, reply: Reply) -> Response:
        error = {"error": {"message": f"fake failure {reply.status}", "type": reply.error_type,
                           "param": None, "code": reply.error_code}}
        return Response(orjson.dumps(error), status_code=reply.status,
                        media_type="application/json", headers=reply.headers)

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.paths.append(request.url.path)
        reply = self.next_reply()
        if isinstance(body.get("web_search_options"), dict):
            self.searched.append(body["web_search_options"])
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.status != 200:
            return self._error(reply)
        if reply.raw_body is not None:
            media_type = "text/event-stream" if body.get("stream") else "application/json"
            return Response(reply.raw_body, media_type=media_type)
        ident = f"chatcmpl-fake{next(self._ids)}"
        self._cached_tokens[ident] = self._prompt_cached(body)
        if body.get("stream"):
            return StreamingResponse(self._chunks(ident, body, reply),
                                     media_type="text/event-stream")
        return Response(orjson.dumps(self._completion(ident, body, reply)),
                        media_type="application/json")

    def _prompt_cached(self, body: dict[str, Any]) -> int:
        """Prompt caching as OpenAI reports it: with a `prompt_cache_key` seen before, the
        leading messages this request shares with the last one under that key are served
        from cache (their words, in usage.prompt_tokens_details.cached_tokens)."""
        key = body.get("prompt_cache_key")
        if not isinstance(key, str):
            return 0
        messages = list(body.get("messages") or [])
        before = self.prompt_caches.get(key, [])
        self.prompt_caches[key] = messages
        shared = 0
        for old, new in zip(before, messages, strict=False):
            if old != new:
                break
            shared += 1
        return _words({"messages": messages[:shared]})

    def _completion(self, ident: str, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        text = f"You said: {_last_text(body)}" if reply.echo else reply.text
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if _searching(body, reply):
            message["annotations"] = url_citations(text or "")
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c["name"],
                              "arguments": orjson.dumps(c["arguments"]).decode()}}
                for i, c in enumerate(reply.tool_calls)
            ]
        return {
            "id": ident, "object": "chat.completion", "created": 1_700_000_000,
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason,
                         "logprobs": _logprobs(body, reply.logprobs)}],
            "usage": _usage(body, reply, self._cached_tokens.pop(ident, 0)),
            **_served_tier(body),
        }

    async def _chunks(
        self, ident: str, body: dict[str, Any], reply: Reply
    ) -> AsyncIterator[bytes]:
        def frame(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": 1_700_000_000,
                     "model": body.get("model"), **_served_tier(body), "choices": choices,
                     **extra}
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        if reply.fail_at_start:
            # vLLM puts the HTTP status in error.code when a request fails after the 200.
            error = {"error": {"message": "fake upstream refused", "type": "BadRequestError",
                               "param": None, "code": 400}}
            yield b"data: " + orjson.dumps(error) + b"\n\n"
            return
        yield frame([{"index": 0, "delta": {"role": "assistant", "content": ""},
                      "finish_reason": None}])
        deadline = asyncio.get_running_loop().time() + FIREHOSE_SECONDS
        while reply.endless or (reply.firehose and asyncio.get_running_loop().time() < deadline):
            yield frame([{"index": 0, "delta": {"content": "x"}, "finish_reason": None}])
            await asyncio.sleep(0 if reply.firehose else 0.005)
        for piece, logprobs in _pieces(body, reply):
            extra = {} if logprobs is None else {"logprobs": logprobs}
            yield frame([{"index": 0, "delta": {"content": piece}, **extra,
                          "finish_reason": None}])
            if reply.fail_mid_stream:
                error = {"error": {"message": "fake upstream broke", "type": "server_error",
                                   "param": None, "code": None}}
                yield b"data: " + orjson.dumps(error) + b"\n\n"
                return
        if reply.truncate:
            return
        if _searching(body, reply):
            yield frame([{"index": 0, "delta": {"annotations": url_citations(reply.text or "")},
                          "finish_reason": None}])
        for i, call in enumerate(reply.tool_calls or []):
            arguments = orjson.dumps(call["arguments"]).decode()
            half = len(arguments) // 2  # argument fragments across chunks, as OpenAI sends them
            yield frame([{"index": 0, "delta": {"tool_calls": [
                {"index": i, "id": f"call_{i}", "type": "function",
                 "function": {"name": call["name"], "arguments": arguments[:half]}}]},
                "finish_reason": None}])
            yield frame([{"index": 0, "delta": {"tool_calls": [
                {"index": i, "function": {"arguments": arguments[half:]}}]},
                "finish_reason": None}])
        yield frame([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
        if (body.get("stream_options") or {}).get("include_usage"):
            yield frame([], usage=_usage(body, reply, self._cached_tokens.pop(ident, 0)))
        yield b"data: [DONE]\n\n"


SEARCH_PAGE = "https://example.com/openai-page"
SEARCH_TITLE = "A page the search found"


def _searching(body: dict[str, Any], reply: Reply) -> bool:
    return reply.searches and isinstance(body.get("web_search_options"), dict)


def url_citations(text: str) -> list[dict[str, Any]]:
    """One url_citation per sentence of `text` (offsets in characters, end exclusive), in
    OpenAI's Chat Completions shape."""
    found: list[dict[str, Any]] = []
    start = 0
    for sentence in text.split(". "):
        end = start + len(sentence) + (1 if start + len(sentence) < len(text) else 0)
        found.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": end, "url": SEARCH_PAGE, "title": SEARCH_TITLE}})
        start = end + 1
    return found


def _usage(body: dict[str, Any], reply: Reply, cached: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": reply.prompt_tokens,
                             "completion_tokens": reply.completion_tokens,
                             "total_tokens": reply.prompt_tokens + reply.completion_tokens}
    if "prompt_cache_key" in body:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _served_tier(body: dict[str, Any]) -> dict[str, str]:
    """`service_tier` as OpenAI reports the tier that served a request that asked for one
    (answers and every stream chunk carry it; "auto" is served at "default")."""
    asked = body.get("service_tier")
    if not isinstance(asked, str):
        return {}
    return {"service_tier": "default" if asked == "auto" else asked}


def _pieces(body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any] | None]]:
    """The streamed content: one token per chunk with its logprobs when they are sent, else
    the text cut into `reply.chunks` pieces."""
    if _logprobs(body, reply.logprobs) is not None:
        return [(token, _logprobs(body, [(token, logprob)]))
                for token, logprob in reply.logprobs or []]
    text = reply.text or ""
    size = max(1, -(-len(text) // reply.chunks)) if text else 1
    return [(text[start:start + size], None) for start in range(0, len(text), size)]


def _logprobs(
    body: dict[str, Any], tokens: list[tuple[str, float]] | None
) -> dict[str, Any] | None:
    if tokens is None or body.get("logprobs") is not True:
        return None
    count = body.get("top_logprobs") or 0
    return {"content": [
        {**_entry(token, logprob), "top_logprobs": _top(token, logprob, count)}
        for token, logprob in tokens
    ], "refusal": None}


def _top(token: str, logprob: float, count: int) -> list[dict[str, Any]]:
    alternatives = [(token, logprob)] + [(f"alt{n}", logprob - n) for n in range(1, count)]
    return [_entry(alt, value) for alt, value in alternatives[:count]]


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}
