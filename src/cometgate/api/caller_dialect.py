"""Which dialect a caller speaks, for the paths that more than one dialect shares.

Most paths name their dialect (`/v1beta/…` and `…:generateContent` are Gemini's,
`/v1/chat/completions` and `/v1/responses` OpenAI's, `/v1/messages` Anthropic's).
`GET /v1/models` and `GET /v1/models/{id}` are the exceptions: Google, OpenAI and Anthropic all
serve them, with different bodies. The clients tell themselves apart by how they send their key:

- `anthropic-version` (every Anthropic client sends it) or `x-api-key` → Anthropic;
- `x-goog-api-key`, `?key=` or `x-goog-api-client` (the Google SDKs) → Gemini;
- otherwise `Authorization: Bearer` → OpenAI (the OpenAI SDK sends nothing else);
- nothing at all → Gemini, the gateway's first dialect.

A route records the dialect it settled on in the request state, so that an error raised later
is written in that dialect's envelope.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import HTTPConnection

from cometgate.dialects.caller_codecs import CALLER_CODECS

Dialect = Literal["gemini", "openai", "anthropic"]

_OPENAI_PATHS = ("/v1/chat/", "/v1/embeddings", "/v1/completions", "/v1/responses", "/chat/",
                 "/embeddings", "/responses")
_ANTHROPIC_PATHS = ("/v1/messages",)


def sniffed_dialect(request: HTTPConnection) -> Dialect:
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic"
    if ("x-goog-api-key" in headers or "key" in request.query_params
            or "x-goog-api-client" in headers):
        return "gemini"
    if headers.get("authorization", "").lower().startswith("bearer "):
        return "openai"
    return "gemini"


def settle_dialect(request: HTTPConnection, dialect: Dialect) -> None:
    request.scope.setdefault("state", {})["dialect"] = dialect


def settle_unknown_route(request: HTTPConnection) -> None:
    """A path no route serves: under /v1/, an OpenAI-style caller (Bearer key, no Google or
    Anthropic headers) hears OpenAI's 404, as the OpenAI SDKs expect; a Gemini-style path (a
    `:method`) stays Google's."""
    path = request.url.path
    if (path.startswith("/v1/") and ":" not in path.rpartition("/")[2]
            and "dialect" not in request.scope.get("state", {})
            and sniffed_dialect(request) == "openai"):
        settle_dialect(request, "openai")


def dialect_of(request: HTTPConnection) -> str:
    """The dialect a route settled on (any registered caller codec's), else the one the path
    names (an unknown path under /v1/chat/ still gets an OpenAI-shaped 404)."""
    settled = request.scope.get("state", {}).get("dialect")
    if isinstance(settled, str) and settled in CALLER_CODECS:
        return settled
    path = request.url.path
    if path.startswith(_ANTHROPIC_PATHS):
        return "anthropic"
    if path.startswith(_OPENAI_PATHS):
        return "openai"
    return "gemini"
