"""The three search backends' requests and answers, read through httpx's MockTransport: what
each sends (path, query, credential header), how its results become SearchResults, and every
kind of bad answer becoming a SearchFailed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from cometgate.grounding.search_backends import SearchBackend, SearchFailed, SearchResult
from cometgate.settings import SearchBackendSettings, Secret

Handler = Callable[[httpx.Request], httpx.Response]


def backend(kind: str, handler: Handler, **options: Any) -> SearchBackend:
    key = None if kind == "searxng" else Secret("k-123", "env:K")
    settings = SearchBackendSettings(kind, "http://search.test", api_key=key, **options)
    return SearchBackend(settings, client=httpx.AsyncClient(
        transport=httpx.MockTransport(handler)))


def json_answer(document: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, content=orjson.dumps(document))


async def test_searxng_request_and_results() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [
            {"url": "https://a.example/1", "title": "A &amp; B", "content": "first  page\n"},
            {"url": "ftp://not.web/x", "title": "skipped", "content": ""},
            {"url": "https://a.example/2", "content": "no title"},
            "not an object",
        ]})

    results = await backend("searxng", answer).search("köln einwohner")
    (request,) = seen
    assert request.method == "GET" and request.url.path == "/search"
    assert dict(request.url.params) == {"q": "köln einwohner", "format": "json"}
    assert results == [SearchResult("https://a.example/1", "A & B", "first page"),
                       SearchResult("https://a.example/2", "https://a.example/2", "no title")]


async def test_brave_request_and_results() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"web": {"results": [
            {"url": "https://b.example/", "title": "B",
             "description": "The <strong>Rhine</strong> flows"}]}})

    results = await backend("brave", answer, max_results=3).search("rhine")
    (request,) = seen
    assert request.url.path == "/res/v1/web/search"
    assert dict(request.url.params) == {"q": "rhine", "count": "3"}
    assert request.headers["x-subscription-token"] == "k-123"
    assert results == [SearchResult("https://b.example/", "B", "The Rhine flows")]


async def test_brave_without_web_results_found_nothing() -> None:
    assert await backend("brave", json_answer({"type": "search"})).search("q") == []


async def test_tavily_request_and_results() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"results": [
            {"url": "https://t.example/", "title": "T", "content": "text", "score": 0.9}]})

    results = await backend("tavily", answer, max_results=2).search("q")
    (request,) = seen
    assert request.method == "POST" and request.url.path == "/search"
    assert orjson.loads(request.content) == {"query": "q", "max_results": 2}
    assert request.headers["authorization"] == "Bearer k-123"
    assert results == [SearchResult("https://t.example/", "T", "text")]


async def test_results_and_snippets_are_bounded() -> None:
    many = [{"url": f"https://x.example/{n}", "title": "t", "content": "y" * 50}
            for n in range(10)]
    results = await backend("searxng", json_answer({"results": many}), max_results=4,
                            max_snippet_chars=8).search("q")
    assert [r.url for r in results] == [f"https://x.example/{n}" for n in range(4)]
    assert {r.snippet for r in results} == {"y" * 8}


@pytest.mark.parametrize(("handler", "reason"), [
    (json_answer({"error": "down"}, status=503), "status 503"),
    (lambda request: httpx.Response(200, content=b"<html>"), "the answer is not JSON"),
    (json_answer([1, 2]), "the answer is not a JSON object"),
    (json_answer({"results": "none"}), "the answer has no list of results"),
    (json_answer({"results": [{"url": "https://x", "content": "z" * 2000}]}),
     "answer over 1000 bytes"),
])
async def test_a_bad_answer_is_a_failed_search(handler: Handler, reason: str) -> None:
    with pytest.raises(SearchFailed, match=reason):
        await backend("searxng", handler, max_response_bytes=1000).search("q")


async def test_a_transport_failure_is_a_failed_search() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SearchFailed, match="ConnectError"):
        await backend("searxng", refuse).search("q")
