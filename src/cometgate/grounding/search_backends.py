"""The web search backends the gateway can run itself (`grounding.search`), each from its
public API reference:

    searxng  GET  {base}/search?q=…&format=json        → {"results": [{url, title, content}]}
    brave    GET  {base}/res/v1/web/search?q=…&count=N   X-Subscription-Token
                                                        → {"web": {"results": [{url, title,
                                                           description}]}}
    tavily   POST {base}/search {"query", "max_results"}  Authorization: Bearer
                                                        → {"results": [{url, title, content}]}

Every search has one deadline (connect to last byte) and a bound on the bytes read; whatever
goes wrong — refused, slow, too large, not the shape above — is a SearchFailed, which the
caller's answer survives without grounding.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from cometgate.settings import SearchBackendSettings

_TAGS = re.compile(r"<[^>]{0,200}>")  # Brave marks matches with <strong> in descriptions
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SearchResult:
    url: str
    title: str
    snippet: str  # the page's text as the backend quotes it, plain text


class SearchFailed(Exception):
    """The backend gave no usable answer; the message says why (for the log, not callers)."""


class SearchBackend:
    """One configured backend over one shared connection pool."""

    def __init__(self, settings: SearchBackendSettings, *,
                 client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.timeout_seconds)
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def search(self, query: str) -> list[SearchResult]:
        """At most `max_results` results with an http(s) URL, best first."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                document = await self._fetch(query)
        except TimeoutError:
            raise SearchFailed(f"no answer within {self.settings.timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise SearchFailed(f"{type(exc).__name__}: {exc}") from None
        results = [_result(entry, self.settings.max_snippet_chars)
                   for entry in _entries(self.settings.kind, document)]
        return [result for result in results if result is not None][:self.settings.max_results]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _fetch(self, query: str) -> Any:
        request = self._request(query)
        response = await self._client.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise SearchFailed(f"status {response.status_code}")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > self.settings.max_response_bytes:
                    raise SearchFailed(
                        f"answer over {self.settings.max_response_bytes} bytes")
        finally:
            await response.aclose()
        try:
            return orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            raise SearchFailed("the answer is not JSON") from None

    def _request(self, query: str) -> httpx.Request:
        s = self.settings
        key = s.api_key.value if s.api_key is not None else ""
        match s.kind:
            case "brave":
                return self._client.build_request(
                    "GET", f"{s.base_url}/res/v1/web/search",
                    params={"q": query, "count": s.max_results},
                    headers={"accept": "application/json", "x-subscription-token": key})
            case "tavily":
                return self._client.build_request(
                    "POST", f"{s.base_url}/search",
                    content=orjson.dumps({"query": query, "max_results": s.max_results}),
                    headers={"content-type": "application/json",
                             "authorization": f"Bearer {key}"})
        return self._client.build_request(
            "GET", f"{s.base_url}/search", params={"q": query, "format": "json"},
            headers={"accept": "application/json"})


def _entries(kind: str, document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise SearchFailed("the answer is not a JSON object")
    holder: Any = document.get("web") if kind == "brave" else document
    results = holder.get("results") if isinstance(holder, dict) else None
    if results is None and kind == "brave":
        return []  # Brave leaves `web` out when nothing was found
    if not isinstance(results, list):
        raise SearchFailed("the answer has no list of results")
    return results


def _result(entry: Any, max_chars: int) -> SearchResult | None:
    if not isinstance(entry, Mapping):
        return None
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    title = _plain(entry.get("title"), max_chars)
    snippet = _plain(entry.get("content", entry.get("description")), max_chars)
    return SearchResult(url, title or url, snippet)


def _plain(value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        return ""
    text = _SPACES.sub(" ", html.unescape(_TAGS.sub("", value))).strip()
    return text[:max_chars]
