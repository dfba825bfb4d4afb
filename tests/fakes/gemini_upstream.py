"""An in-process Gemini REST server (generativelanguage) for provider and API tests.

It speaks the real wire format: pretty-printed GenerateContentResponse bodies with
`application/json; charset=UTF-8`; `?alt=sse` streams of `data: <one-line JSON>` events with a
running usageMetadata in every event and finishReason only in the last; JSON-array streams
without `alt`; errors in Google's envelope `{"error":{code,message,status,details}}` (RetryInfo
and QuotaFailure on 429s, ErrorInfo API_KEY_INVALID on a bad key); and mid-stream
`data: {"error":{…}}` events; `:countTokens` in both request forms, counting one token per word
of what it received. It answers from a script the test sets and records every request's path,
query, headers and body bytes, and the exact bytes of every stream it sent.

It also keeps a Files API (`files`): Google's resumable upload (`start`, then `upload` /
`upload, finalize` pieces at their offsets) and `GET files/{id}`; a generateContent whose
fileData names a file it does not have, or a URI not its own, is refused as Google refuses it.

`cachedContents` as Google serves them: create (refused below `min_cache_tokens`, Google's
400), PATCH of the expiry, DELETE; a generation naming one reads its prefix first and
reports it served from cache in `cachedContentTokenCount` (one token per word, as counted).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.gemini_batches import GeminiBatches

JSON_TYPE = "application/json; charset=UTF-8"
# A firehose ends by itself after this long: a client that never closes (the bug it tests
# for) must not leave the fake spinning.
FIREHOSE_SECONDS = 20.0
_RPC = "type.googleapis.com/google.rpc."
_CALL = re.compile(
    r"^(?:(?P<prefix>.*)/)?(?P<model>(?:models|tunedModels)/[^/:]+):(?P<method>\w+)$")
_CACHES = re.compile(r"^(?:v1beta/)?cachedContents(?:/(?P<id>[^/]+))?$")


def search_grounding(*queries: str) -> dict[str, Any]:
    """groundingMetadata as Google Search grounding reports it."""
    return {
        "webSearchQueries": list(queries),
        "searchEntryPoint": {"renderedContent": "<div class=\"container\">…</div>"},
        "groundingChunks": [{"web": {"uri": "https://vertexaisearch.cloud.google.com/g/1",
                                     "title": "example.com"}}],
        "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 5, "text": "Hello"},
                               "groundingChunkIndices": [0]}],
    }


SEARCH_PAGE = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/fake1"


def grounding_for(text: str, query: str) -> dict[str, Any]:
    """groundingMetadata as Google Search grounding reports it for an answer `text`: one
    support per sentence, each citing the one page found, its segment offsets in bytes of
    the UTF-8 text (a 0 start left out, as proto3 JSON does)."""
    supports, start = [], 0
    for sentence in re.findall(r"[^.]+\.?\s*", text):
        size = len(sentence.rstrip().encode())
        segment: dict[str, Any] = {"endIndex": start + size, "text": sentence.rstrip()}
        if start:
            segment["startIndex"] = start
        supports.append({"segment": segment, "groundingChunkIndices": [0]})
        start += len(sentence.encode())
    return {
        "webSearchQueries": [query],
        "searchEntryPoint": {"renderedContent": "<div class=\"container\">…</div>"},
        "groundingChunks": [{"web": {"uri": SEARCH_PAGE, "title": "example.com"}}],
        "groundingSupports": supports,
    }


def error_info(reason: str) -> dict[str, Any]:
    return {"@type": _RPC + "ErrorInfo", "reason": reason, "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": _RPC + "RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {"@type": _RPC + "QuotaFailure", "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": "gemini-x"},
        "quotaValue": "10"}]}


def resource_info(resource_type: str, name: str) -> dict[str, Any]:
    return {"@type": _RPC + "ResourceInfo", "resourceType": resource_type, "resourceName": name}


def google_error(code: int, status: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


@dataclass
class Reply:
    """What the fake answers next. `text` is split into `chunks` events when streaming."""

    text: str = "Hello from the fake Gemini upstream."
    chunks: int = 3
    prompt_tokens: int = 8
    candidates_tokens: int = 6
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str = "STOP"
    model_version: str = "gemini-2.5-flash"
    separator: bytes = b"\r\n\r\n"  # what ends each SSE event
    piece_size: int | None = None  # cut the stream body into pieces of this many bytes
    # An error answer instead: HTTP status and Google's envelope, or raw bytes (an HTML page).
    status: int = 200
    error: dict[str, Any] | None = None
    raw_error: bytes | None = None
    raw_body: bytes | None = None  # a 200 answer with exactly these bytes
    headers: dict[str, str] = field(default_factory=dict)
    fail_mid_stream: dict[str, Any] | None = None  # after the first event, this error event
    pause_after: int | None = None  # after this many events, wait for `resume`
    hold_headers: bool = False  # wait for `resume` before answering at all
    reset_after_first: bool = False  # break the connection after the first event
    endless: bool = False  # events until the client goes away
    firehose: bool = False  # events as fast as the client reads, FIREHOSE_SECONDS at most
    # groundingMetadata of the candidate, as Google Search grounding adds it to the final
    # answer (the last stream event, which also ends the candidate); None: not grounded,
    # unless the request offers the googleSearch tool and `searches` (then `grounding_for`
    # the text: the model chose to search for `search_query`).
    grounding: dict[str, Any] | None = None
    searches: bool = True
    search_query: str = "fake search query"


@dataclass
class FakeFile:
    """A file of the fake's Files API: what arrived, piece by piece."""

    id: str
    display_name: str
    mime_type: str
    size: int
    data: bytearray = field(default_factory=bytearray)
    pieces: list[int] = field(default_factory=list)  # the size of each piece received
    final: bool = False

    def resource(self, base_url: str) -> dict[str, Any]:
        return {"name": f"files/{self.id}", "displayName": self.display_name,
                "mimeType": self.mime_type, "sizeBytes": str(self.size),
                "createTime": "2026-01-01T00:00:00.000000Z",
                "updateTime": "2026-01-01T00:00:00.000000Z",
                "expirationTime": "2099-01-03T00:00:00.123456789Z",
                "sha256Hash": "", "uri": f"{base_url}v1beta/files/{self.id}",
                "state": "ACTIVE", "source": "UPLOADED"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class FakeGeminiUpstream:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.searched: list[dict[str, Any]] = []  # each googleSearch tool received, in order
        self.replies: list[Reply] = []
        self.default = Reply()
        self.sent: list[list[bytes]] = []  # per stream, the pieces written, in order
        self.resume = asyncio.Event()
        self.stream_closed = asyncio.Event()  # a stream's generator ended, however it ended
        self.caches: dict[str, dict[str, Any]] = {}  # name → CachedContent, as created
        self.min_cache_tokens = 0
        self.files: dict[str, FakeFile] = {}
        self.uploads: dict[str, FakeFile] = {}  # by upload id
        self.file_requests: list[Seen] = []  # the Files API's, apart from model calls
        # The Batch API (batches.log proves what it was asked); answers echo each request.
        self.batches = GeminiBatches(self._batch_answer)
        self.app = Starlette(routes=[
            *self.batches.routes(),
            Route("/upload/v1beta/files", self._upload, methods=["POST"]),
            Route("/v1beta/files/{file_id}", self._get_file, methods=["GET"]),
            Route("/{path:path}", self._call, methods=["POST", "PATCH", "DELETE"]),
        ])

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    def _batch_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """A batch request's answer: "You said: " and its last text."""
        parts = (request.get("contents") or [{}])[-1].get("parts") or []
        text = "".join(str(part.get("text", "")) for part in parts)
        return self._response(self.default, f"You said: {text}", final=True)

    async def _call(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Seen(request.method, request.url.path, request.url.query,
                                  dict(request.headers), body))
        caches = _CACHES.match(request.path_params["path"])
        if caches is not None:
            return self._cache_call(request.method, caches["id"], body)
        reply = self.next_reply()
        cached = self._cached_words(body)
        if cached is None:
            return _json(403, google_error(403, "PERMISSION_DENIED",
                                           "CachedContent not found (or permission denied)"))
        if cached:
            reply = replace(reply, cached_tokens=cached, prompt_tokens=reply.prompt_tokens + cached)
        searches = _search_tools(body)
        self.searched.extend(searches)
        if searches and reply.searches and reply.grounding is None:
            reply = replace(reply, grounding=grounding_for(reply.text, reply.search_query))
        if reply.hold_headers:
            await self.resume.wait()
        match = _CALL.match(request.path_params["path"])
        if match is None:
            return _json(404, google_error(404, "NOT_FOUND", "Requested entity was not found."))
        refused = self._unknown_file(body, str(request.base_url))
        if refused is not None:
            return refused
        if reply.status != 200:
            return self._error(reply)
        method = match["method"]
        if reply.raw_body is not None:
            return Response(reply.raw_body, media_type=JSON_TYPE)
        if method == "countTokens":
            return _count_tokens(orjson.loads(body))
        if method == "generateContent":
            return _json(200, self._response(reply, reply.text, final=True))
        if method == "streamGenerateContent":
            sse = request.query_params.get("alt") == "sse"
            pieces = self._sse(reply) if sse else self._array(reply)
            return StreamingResponse(
                self._written(pieces, reply),
                media_type="text/event-stream" if sse else JSON_TYPE)
        return _json(400, google_error(400, "INVALID_ARGUMENT", f"unknown method {method}"))

    async def _upload(self, request: Request) -> Response:
        body = await request.body()
        self.file_requests.append(Seen(request.method, request.url.path, request.url.query,
                                       dict(request.headers), body))
        if "upload_id" in request.query_params:
            return self._upload_piece(request, body)
        if (request.headers.get("x-goog-upload-protocol") != "resumable"
                or request.headers.get("x-goog-upload-command") != "start"):
            return _json(400, google_error(400, "INVALID_ARGUMENT", "Invalid upload request."))
        metadata = orjson.loads(body or b"{}").get("file", {})
        file_id = f"up{len(self.uploads) + 1}"
        upload = FakeFile(file_id, metadata.get("displayName", ""),
                          request.headers["x-goog-upload-header-content-type"],
                          int(request.headers["x-goog-upload-header-content-length"]))
        self.uploads[file_id] = upload
        url = f"{request.base_url}upload/v1beta/files?upload_id={file_id}"
        return Response(b"", headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"})

    def _upload_piece(self, request: Request, body: bytes) -> Response:
        upload = self.uploads.get(request.query_params["upload_id"])
        if upload is None or upload.final:
            return _json(404, google_error(404, "NOT_FOUND", "Upload not found."),
                         {"x-goog-upload-status": "final"})
        command = {c.strip() for c in request.headers["x-goog-upload-command"].split(",")}
        if int(request.headers.get("x-goog-upload-offset", "-1")) != len(upload.data):
            return _json(400, google_error(400, "INVALID_ARGUMENT", "Invalid offset."),
                         {"x-goog-upload-status": "active"})
        upload.data += body
        upload.pieces.append(len(body))
        if "finalize" not in command:
            return Response(b"", headers={"x-goog-upload-status": "active"})
        upload.final = True
        self.files[upload.id] = upload
        return _json(200, {"file": upload.resource(str(request.base_url))},
                     {"x-goog-upload-status": "final"})

    async def _get_file(self, request: Request) -> Response:
        file = self.files.get(request.path_params["file_id"])
        if file is None:
            return _json(403, google_error(403, "PERMISSION_DENIED", "You do not have "
                         f"permission to access the File {request.path_params['file_id']} or "
                         "it may not exist."))
        return _json(200, file.resource(str(request.base_url)))

    def _unknown_file(self, body: bytes, base_url: str) -> Response | None:
        """Google refuses a fileData URI that names none of the project's files."""
        if b"fileUri" not in body and b"file_uri" not in body:
            return None
        for uri in re.findall(r'"file_?[uU]ri"\s*:\s*"([^"]*)"', body.decode()):
            file_id = uri.removeprefix(f"{base_url}v1beta/files/")
            if file_id == uri:
                return _json(400, google_error(400, "INVALID_ARGUMENT",
                                               f"Unsupported file uri: {uri}"))
            if file_id not in self.files:
                return _json(403, google_error(403, "PERMISSION_DENIED", "You do not have "
                             f"permission to access the File {file_id} or it may not exist."))
        return None

    def _cache_call(self, method: str, cache_id: str | None, body: bytes) -> Response:
        if method == "POST" and cache_id is None:
            document = orjson.loads(body)
            words = _words(document)
            if words < self.min_cache_tokens:
                return _json(400, google_error(
                    400, "INVALID_ARGUMENT", "Cached content is too small. total_token_count="
                    f"{words}, min_total_token_count={self.min_cache_tokens}"))
            name = f"cachedContents/fake{len(self.caches) + 1}"
            self.caches[name] = {**document, "name": name,
                                 "usageMetadata": {"totalTokenCount": words}}
            return _json(200, {key: value for key, value in self.caches[name].items()
                               if key not in ("contents", "systemInstruction", "tools")})
        name = f"cachedContents/{cache_id}"
        if name not in self.caches:
            return _json(403, google_error(403, "PERMISSION_DENIED",
                                           "CachedContent not found (or permission denied)"))
        if method == "DELETE":
            del self.caches[name]
            return _json(200, {})
        if method == "PATCH":
            self.caches[name].update(orjson.loads(body))
            return _json(200, {"name": name})
        return _json(405, google_error(405, "UNIMPLEMENTED", "not served by the fake"))

    def _cached_words(self, body: bytes) -> int | None:
        """The words of the cache a generation names (0: none), None for an unknown one."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 0
        name = document.get("cachedContent") if isinstance(document, dict) else None
        if not name:
            return 0
        cache = self.caches.get(name)
        return None if cache is None else int(cache["usageMetadata"]["totalTokenCount"])

    def _error(self, reply: Reply) -> Response:
        if reply.raw_error is not None:
            return Response(reply.raw_error, status_code=reply.status, headers=reply.headers,
                            media_type="text/html; charset=UTF-8")
        error = reply.error or google_error(reply.status, "INTERNAL", "An internal error.")
        return _json(reply.status, error, reply.headers)

    def _response(self, reply: Reply, text: str, *, final: bool,
                  produced: int | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"},
                                     "index": 0}
        if final:
            candidate["finishReason"] = reply.finish_reason
            if reply.grounding is not None:
                candidate["groundingMetadata"] = reply.grounding
        return {"candidates": [candidate],
                "usageMetadata": _usage(reply, reply.candidates_tokens
                                        if produced is None else produced),
                "modelVersion": reply.model_version, "responseId": "fakeResponseId0"}

    def _pieces_of_text(self, reply: Reply) -> list[str]:
        size = max(1, -(-len(reply.text) // reply.chunks))
        return [reply.text[i:i + size] for i in range(0, len(reply.text), size)] or [""]

    def _elements(self, reply: Reply) -> list[dict[str, Any]]:
        pieces = self._pieces_of_text(reply)
        return [
            self._response(reply, piece, final=i == len(pieces) - 1,
                           produced=reply.candidates_tokens * (i + 1) // len(pieces))
            for i, piece in enumerate(pieces)
        ]

    async def _sse(self, reply: Reply) -> AsyncIterator[bytes]:
        def event(document: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps(document) + reply.separator

        if reply.endless or reply.firehose:
            deadline = asyncio.get_running_loop().time() + FIREHOSE_SECONDS
            while reply.endless or asyncio.get_running_loop().time() < deadline:
                yield event(self._response(reply, "x", final=False, produced=1))
                await asyncio.sleep(0 if reply.firehose else 0.01)
        for sent, element in enumerate(self._elements(reply)):
            if reply.pause_after is not None and sent == reply.pause_after:
                await self.resume.wait()
            yield event(element)
            if reply.reset_after_first:
                raise ConnectionResetError("the fake upstream breaks the connection")
            if reply.fail_mid_stream is not None:
                yield event(reply.fail_mid_stream)
                return

    async def _array(self, reply: Reply) -> AsyncIterator[bytes]:
        # Elements pretty-printed like unary answers, separated by ",\r\n" (d.6).
        yield b"["
        for i, element in enumerate(self._elements(reply)):
            if i:
                yield b",\r\n"
            yield orjson.dumps(element, option=orjson.OPT_INDENT_2)
            if reply.fail_mid_stream is not None:
                yield b",\r\n" + orjson.dumps(reply.fail_mid_stream, option=orjson.OPT_INDENT_2)
                break
        yield b"]"

    async def _written(self, pieces: AsyncIterator[bytes], reply: Reply) -> AsyncIterator[bytes]:
        sent: list[bytes] = []
        self.sent.append(sent)
        try:
            async for piece in pieces:
                for part in _cut(piece, reply.piece_size):
                    sent.append(part)
                    yield part
        finally:
            self.stream_closed.set()


def _search_tools(body: bytes) -> list[dict[str, Any]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    tools = document.get("tools") if isinstance(document, dict) else None
    return [tool["googleSearch"] for tool in tools or []
            if isinstance(tool, dict) and "googleSearch" in tool]


def _cut(piece: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [piece]
    return [piece[i:i + size] for i in range(0, len(piece), size)]


def _usage(reply: Reply, produced: int) -> dict[str, Any]:
    # proto3 JSON omits zero counts: early events carry no candidatesTokenCount.
    counts = {"promptTokenCount": reply.prompt_tokens, "candidatesTokenCount": produced,
              "totalTokenCount": reply.prompt_tokens + produced + reply.thoughts_tokens,
              "cachedContentTokenCount": reply.cached_tokens,
              "thoughtsTokenCount": reply.thoughts_tokens}
    usage: dict[str, Any] = {key: value for key, value in counts.items() if value}
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}]
    return usage


def _count_tokens(body: dict[str, Any]) -> Response:
    """Google's CountTokensResponse, counting one token per word of every text the model
    would read: contents, and — in the `generateContentRequest` form, the only one that can
    carry them — the system instruction and the function declarations' names and
    descriptions. Both spellings of each key are read, as Google's parser reads them."""
    inner = _either(body, "generateContentRequest", "generate_content_request")
    if (inner is None) == (body.get("contents") is None):
        return _json(400, google_error(400, "INVALID_ARGUMENT",
                                       "* CountTokensRequest: exactly one of contents or "
                                       "generate_content_request must be set.\n"))
    if inner is not None and not str(inner.get("model", "")).startswith("models/"):
        return _json(400, google_error(400, "INVALID_ARGUMENT",
                                       "* GenerateContentRequest.model: unexpected model name "
                                       "format\n"))
    total = _words(inner if inner is not None else body)
    return _json(200, {"totalTokens": total,
                       "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]})


def _words(request: dict[str, Any]) -> int:
    texts = [part.get("text", "") for content in request.get("contents") or []
             for part in content.get("parts") or []]
    system = _either(request, "systemInstruction", "system_instruction") or {}
    texts += [part.get("text", "") for part in system.get("parts") or []]
    for tool in request.get("tools") or []:
        for declaration in _either(tool, "functionDeclarations", "function_declarations") or []:
            texts += [declaration.get("name", ""), declaration.get("description", "")]
    return sum(len(text.split()) for text in texts)


def _either(document: dict[str, Any], camel: str, snake: str) -> Any:
    return document.get(camel, document.get(snake))


def _json(status: int, document: dict[str, Any], headers: dict[str, str] | None = None
          ) -> Response:
    return Response(orjson.dumps(document, option=orjson.OPT_INDENT_2), status_code=status,
                    headers=headers, media_type=JSON_TYPE)
