"""In-process embedding upstreams speaking the real wire formats, for the HTTP embedders.

Gemini: `POST /v1beta/models/{model}:batchEmbedContents`, key in x-goog-api-key, answers
pretty-printed `{"embeddings":[{"values":[…]}]}` as application/json; charset=UTF-8, and
refuses with Google's envelope (more than 100 requests: INVALID_ARGUMENT, as Google does).
OpenAI: `POST /v1/embeddings`, Bearer key, compact `{"object":"list","data":[…],"model",
"usage"}` with base64 embeddings when asked, and OpenAI's error envelope.
Both derive each vector from its text (length and first character), so tests can tell which
answer belongs to which input, and both record every request.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

GOOGLE_JSON = "application/json; charset=UTF-8"
_BATCH_CALL = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):batchEmbedContents$")


def vector_for(text: str) -> list[float]:
    return [float(len(text)), float(ord(text[0])) if text else 0.0, 0.5]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ScriptedError:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeEmbeddingUpstreams:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.errors: list[ScriptedError] = []
        self.gemini_usage = False  # answer with usageMetadata.promptTokenCount
        self.short_answer = False  # one vector fewer than asked for
        self.app = Starlette(routes=[
            Route("/v1beta/{rest:path}", self._gemini, methods=["POST"]),
            Route("/v1/embeddings", self._openai, methods=["POST"]),
        ])

    async def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(await request.body())
        self.seen.append(Seen(request.url.path, dict(request.headers), body))
        return body

    def _scripted(self) -> Response | None:
        if not self.errors:
            return None
        error = self.errors.pop(0)
        return Response(orjson.dumps(error.body), status_code=error.status,
                         headers=error.headers, media_type="application/json")

    async def _gemini(self, request: Request) -> Response:
        body = await self._record(request)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        if _BATCH_CALL.match(request.url.path) is None:
            return _google(404, "NOT_FOUND", "Requested entity was not found.")
        requests = body["requests"]
        if len(requests) > 100:
            return _google(400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: "
                           "at most 100 requests can be in one batch")
        texts = [item["content"]["parts"][0]["text"] for item in requests]
        if self.short_answer:
            texts = texts[:-1]
        answer: dict[str, Any] = {"embeddings": [{"values": vector_for(t)} for t in texts]}
        if self.gemini_usage:
            count = sum(len(t.split()) for t in texts)
            answer["usageMetadata"] = {"promptTokenCount": count, "totalTokenCount": count}
        return Response(orjson.dumps(answer, option=orjson.OPT_INDENT_2),
                        media_type=GOOGLE_JSON)

    async def _openai(self, request: Request) -> Response:
        body = await self._record(request)
        scripted = self._scripted()
        if scripted is not None:
            return scripted
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        as_base64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": _packed(vector_for(t)) if as_base64 else vector_for(t)}
                for i, t in enumerate(texts)]
        count = sum(len(t.split()) for t in texts)
        answer = {"object": "list", "data": data, "model": body["model"],
                  "usage": {"prompt_tokens": count, "total_tokens": count}}
        return Response(orjson.dumps(answer), media_type="application/json")


def _packed(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _google(code: int, status: str, message: str) -> Response:
    body = {"error": {"code": code, "message": message, "status": status}}
    return Response(orjson.dumps(body, option=orjson.OPT_INDENT_2), status_code=code,
                    media_type=GOOGLE_JSON)


def google_error(code: int, status: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> ScriptedError:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return ScriptedError(code, {"error": error})


def openai_error(status: int, message: str, kind: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> ScriptedError:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return ScriptedError(status, body, headers or {})
