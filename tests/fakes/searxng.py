"""An in-process SearXNG server (its JSON API: `GET /search?q=…&format=json` →
`{"query", "number_of_results", "results": [{url, title, content, engine, score}], …}`), also
answering Brave's `GET /res/v1/web/search` and Tavily's `POST /search` shapes, for the
gateway's own Google Search grounding. It records every query and answers from `pages` (the
same pages for any query), or with a scripted fault: an error status, a body that is not
JSON, a body larger than any bound, or no answer at all until `release` is set."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    content: str


# Non-ASCII text, so that Google's byte offsets differ from character offsets.
PAGES = (
    Page("https://example.org/koeln", "Köln: Stadt am Rhein",
         "Köln liegt am Rhein und ist mit über einer Million Einwohnern die größte Stadt in "
         "Nordrhein-Westfalen."),
    Page("https://example.org/dom", "Der Kölner Dom",
         "Der Kölner Dom ist eine gotische Kathedrale und das Wahrzeichen der Stadt; sein "
         "Bau begann 1248 und endete 1880."),
)


@dataclass
class FakeSearch:
    pages: tuple[Page, ...] = PAGES
    queries: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # each request's headers
    status: int = 200
    not_json: bool = False
    oversized: bool = False  # 3 MiB of results, beyond the gateway's default bound
    hang: bool = False  # no answer until `release` is set
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[
            Route("/search", self._searxng, methods=["GET"]),
            Route("/search", self._tavily, methods=["POST"]),
            Route("/res/v1/web/search", self._brave, methods=["GET"]),
        ])

    async def _searxng(self, request: Request) -> Response:
        if request.query_params.get("format") != "json":
            return Response("format must be json", status_code=403)  # SearXNG's own refusal
        query = request.query_params.get("q", "")
        results = [{"url": p.url, "title": p.title, "content": p.content, "engine": "fake",
                    "engines": ["fake"], "score": 1.0 / (i + 1), "category": "general"}
                   for i, p in enumerate(self.pages)]
        return await self._answer(request, query, {
            "query": query, "number_of_results": len(results), "results": results,
            "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
            "unresponsive_engines": []})

    async def _brave(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        results = [{"type": "search_result", "url": p.url, "title": p.title,
                    "description": f"<strong>{p.content}</strong>"} for p in self.pages]
        return await self._answer(request, query, {
            "type": "search", "query": {"original": query},
            "web": {"type": "search", "results": results}})

    async def _tavily(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        query = str(body.get("query", ""))
        results = [{"url": p.url, "title": p.title, "content": p.content, "score": 0.9}
                   for p in self.pages[:body.get("max_results", 5)]]
        return await self._answer(request, query, {
            "query": query, "answer": None, "images": [], "results": results,
            "response_time": 0.5})

    async def _answer(self, request: Request, query: str, document: Any) -> Response:
        self.queries.append(query)
        self.headers.append(dict(request.headers))
        if self.hang:
            await self.release.wait()
        if self.status != 200:
            return Response(orjson.dumps({"error": "fake failure"}), status_code=self.status)
        if self.not_json:
            return Response(b"<html>not json</html>", media_type="text/html")
        if self.oversized:
            filler = [{"url": "https://example.org/x", "title": "x", "content": "x" * 1000}]
            document = {"results": filler * 3000}
        return Response(orjson.dumps(document), media_type="application/json")
