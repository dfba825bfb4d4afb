"""The floor: the thinnest forwarders the gateway's own stack allows, to set its overhead against.

Two raw ASGI apps (no framework, no routing table, no auth, no accounting), each served by
uvicorn with the settings of `cometgate.server.run` (one process, uvloop and httptools chosen
by uvicorn's "auto", lifespan on, access log off, no server header):

- `floor`: takes a Gemini `:generateContent` or `:streamGenerateContent?alt=sse` POST on the
  gateway's URL shape (`/v1beta/models/{model}:{method}`), sends its body to the mock upstream
  with cometgate's own upstream client (`Http1Client`, the mock's key header), and relays the
  answer: whole for generateContent, piece by piece as read for a stream. Any model name goes to
  the one upstream model. No deadline of its own: the benchmark's client bounds every request.
- `uvicorn-only`: answers the mock's canned bodies itself, on the mock's timetable (first byte
  after `latency_ms`, then one event every `interval_ms`), with no upstream call: uvicorn's own
  cost per request. It follows the timing posted to its `/_mock/config`, as the mock does.

Both answer `GET /healthz` (readiness) and 404 to anything else.

    python -m bench.proxy.floor_app --mode floor --port 9200 --upstream-port 9101
    python -m bench.proxy.floor_app --mode uvicorn-only --port 9201
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from bench.proxy.mock_upstream import Timing, gemini_body, gemini_events

from cometgate.providers.http1 import Http1Client, Http1Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/v1beta/models/"
JSON_HEADERS = [(b"content-type", b"application/json; charset=UTF-8")]
SSE_HEADERS = [(b"content-type", b"text/event-stream")]
# The gateway's defaults: 5 s to connect, a pool of 100 connections per origin (more than the
# benchmark ever has in flight, so no request waits for a connection).
CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 100


def gemini_method(scope: Scope) -> str | None:
    """"generateContent", "streamGenerateContent" (with alt=sse only), or None."""
    path: str = scope["path"]
    if scope["method"] != "POST" or not path.startswith(PREFIX):
        return None
    method = path[len(PREFIX):].rpartition(":")[2]
    if method == "generateContent":
        return method
    if method == "streamGenerateContent" and b"alt=sse" in scope["query_string"]:
        return method
    return None


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body  # the usual case: the whole body in one message
    pieces = [body]
    while message.get("more_body"):
        message = await receive()
        pieces.append(message.get("body", b""))
    return b"".join(pieces)


async def answer(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                 body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send,
                   on_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def health_or_404(scope: Scope, send: Send) -> None:
    if scope["method"] == "GET" and scope["path"] == "/healthz":
        await answer(send, 200, JSON_HEADERS, b'{"status":"ok"}')
    else:
        await answer(send, 404, JSON_HEADERS, b"{}")


class FloorApp:
    """Forwards Gemini pass-through requests to one upstream model. Invariant: each upstream
    response is closed (its connection pooled or dropped) whatever happens to the caller."""

    def __init__(self, upstream: str, model: str, key: str) -> None:
        base = f"{upstream}{PREFIX}{model}"
        self.urls = {"generateContent": f"{base}:generateContent",
                     "streamGenerateContent": f"{base}:streamGenerateContent?alt=sse"}
        self.headers = {"content-type": "application/json", "x-goog-api-key": key}
        self.client: Http1Client | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self.close)
            return
        method = gemini_method(scope)
        if method is None:
            await health_or_404(scope, send)
            return
        if self.client is None:  # created on the serving loop, which alone may use it
            self.client = Http1Client(connect_timeout=CONNECT_TIMEOUT_S,
                                      max_connections=MAX_CONNECTIONS)
        body = await read_body(receive)
        response = await self.client.post(self.urls[method], body, self.headers)
        try:
            if method == "generateContent":
                await answer(send, response.status_code, content_type(response),
                             await whole(response))
            else:
                await relay(send, response)
        finally:
            await response.aclose()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def content_type(response: Http1Response) -> list[tuple[bytes, bytes]]:
    value = response.headers.get("content-type")
    return [(b"content-type", value.encode("latin-1"))] if value else JSON_HEADERS


async def whole(response: Http1Response) -> bytes:
    pieces: list[bytes] = []
    while True:
        piece = response.read_nowait()  # a small answer is complete on arrival: no wait
        if piece is None:
            piece = await response.next_chunk()
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)


async def relay(send: Send, response: Http1Response) -> None:
    """Each piece goes out as soon as it is read; uvicorn frames them as HTTP chunks."""
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": content_type(response)})
    while piece := await response.next_chunk():
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class UvicornOnlyApp:
    """Answers with the mock's own bytes and timing, so that its latency compares with the
    mock's and the difference is uvicorn's cost."""

    def __init__(self, model: str) -> None:
        self.timing = Timing()
        self.body = gemini_body(model)
        self.model = model
        self.events = gemini_events(model, self.timing.chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        method = gemini_method(scope)
        body = await read_body(receive)
        if scope["path"] == "/_mock/config":
            self.configure(body)
            await answer(send, 200, JSON_HEADERS, b"{}")
        elif method == "generateContent":
            await pause(self.timing.latency_ms)
            await answer(send, 200, JSON_HEADERS, self.body)
        elif method == "streamGenerateContent":
            await self.stream(send)
        else:
            await health_or_404(scope, send)

    def configure(self, body: bytes) -> None:
        for key, value in orjson.loads(body or b"{}").items():
            setattr(self.timing, key, type(getattr(self.timing, key))(value))
        self.events = gemini_events(self.model, self.timing.chunks)

    async def stream(self, send: Send) -> None:
        events, interval = self.events, self.timing.interval_ms
        await pause(self.timing.latency_ms)
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        for index, event in enumerate(events):
            if index:
                await pause(interval)
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def pause(milliseconds: float) -> None:
    # As the mock: no timer at all for a zero delay (the saturation phase).
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


def serve(app: FloorApp | UvicornOnlyApp, port: int) -> None:
    """uvicorn as `cometgate.server.run` configures it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", access_log=False,
                            log_level="info", server_header=False, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("floor", "uvicorn-only"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, help="the mock's port (floor only)")
    parser.add_argument("--model", default="gemini-2.5-flash", help="the upstream model")
    parser.add_argument("--key", default="mock-upstream-key", help="the upstream's API key")
    args = parser.parse_args()
    if args.mode == "uvicorn-only":
        serve(UvicornOnlyApp(args.model), args.port)
        return
    if args.upstream_port is None:
        parser.error("--upstream-port is required with --mode floor")
    serve(FloorApp(f"http://127.0.0.1:{args.upstream_port}", args.model, args.key), args.port)


if __name__ == "__main__":
    main()
